// /docs: Swagger UI over this gateway's /openapi.json. "Authorize" takes the access token
// from POST /v1/auth/token ("Try it out" there first), kept for this browser tab.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
});
