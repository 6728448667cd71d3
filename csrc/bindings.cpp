// Placeholder module so the package builds while the engine is written.
#include <pybind11/pybind11.h>
PYBIND11_MODULE(_engine, m) { m.doc() = "titus scheduling engine"; }
