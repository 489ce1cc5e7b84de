#pragma once

// Internal gRPC is mutual TLS in tests as in production: every test that
// starts a service (in process or as a process) or dials one takes its
// certificates from here.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "tg/common/internal_tls.h"

namespace tg::testing {

// A tg-certs directory with every identity: $TG_TEST_TLS_DIR (scripts/test
// makes it once per run with tg-certs), else one this process generates on
// first use (removed at exit).
const std::string& TestTlsDir();

// True when TG_TEST_GRPC_INSECURE=1: every service and every test client
// speaks plaintext gRPC. Only for running the end-to-end tests against
// binaries without internal TLS (TG_TEST_BIN_DIR pointing at an older build,
// to see a reproduction fail there); the internal-auth tests fail in it.
bool TestGrpcInsecure();

// The credentials of `identity` in TestTlsDir() (plaintext when
// TestGrpcInsecure()) (aborts when they do not load:
// nothing else in the test could work).
const InternalTls& TestTls(std::string_view identity);

// A channel to the service at `address` whose certificate must name
// `server_identity`, presenting `client_identity`'s certificate; what
// DialInternal makes, so the production path is the one tested.
std::shared_ptr<grpc::Channel> TestChannel(const std::string& address,
                                           std::string_view server_identity,
                                           std::string_view client_identity = kEdgeIdentity);
// The same for a server on 127.0.0.1:`port`.
std::shared_ptr<grpc::Channel> TestChannel(int port, std::string_view server_identity,
                                           std::string_view client_identity = kEdgeIdentity);

}  // namespace tg::testing
