// Starts Swagger UI on the element that names the spec; served as a file so that the docs
// page needs no inline script (its Content-Security-Policy allows 'self' only).
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui-container");
  var config = JSON.parse(container.dataset.config || "{}");
  config.url = container.dataset.specUrl;
  config.dom_id = "#swagger-ui-container";
  window.ui = SwaggerUIBundle(config);
});
