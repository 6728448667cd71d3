// Starts Swagger UI on /openapi.json (no inline script: the page's CSP allows only files of
// the master). A write tried from the page with the web UI's session carries its CSRF header.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="titus-csrf"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: function (request) {
      if (csrf) { request.headers["X-Titus-CSRF"] = csrf; }
      return request;
    }
  });
})();
