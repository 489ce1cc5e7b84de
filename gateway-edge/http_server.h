#pragma once

// The shared HTTP server (tg/common/http_server.h, namespace tg::web) under
// the names the edge's code and tests use.

#include "tg/common/http_server.h"

namespace tg::edge {

using web::HttpBodyStream;
using web::HttpHandler;
using web::HttpRequest;
using web::HttpResponder;
using web::HttpResponse;
using web::HttpServer;
using web::HttpServerOptions;
using web::IsOriginForm;
using web::JsonError;
using web::JsonResponse;
using web::ValidateHttpServerOptions;

}  // namespace tg::edge
