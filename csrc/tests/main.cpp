// The engine's C++ tests (doctest, header-only): built and run by tests/test_cxx.py.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
