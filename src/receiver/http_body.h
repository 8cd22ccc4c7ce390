// What every HTTP receiver reads the same way (OTLP/HTTP, Zipkin, Jaeger's thrift_http): the
// tenant, the media type of a header value and the request body's Content-Encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_server.h"
#include "common/status.h"
#include "distributor/distributor.h"

namespace tracery::receiver {

// A Content-Type (or Content-Encoding) value lower-cased, without parameters or surrounding
// blanks: "Application/JSON; charset=utf-8" -> "application/json".
std::string MediaType(std::string_view header_value);

// The request's tenant from its X-Scope-OrgID header; a refused one is counted (bad_tenant).
Result<std::string> RequestTenant(const HttpRequest& request, distributor::Distributor& distributor);

// Decodes `body` in place by its Content-Encoding, one token: gzip (x-gzip; every member,
// nothing after the last), deflate (zlib) or identity/absent. TooLarge past
// `max_request_bytes` decompressed, InvalidArgument for a bad stream, UnsupportedMedia for
// any other encoding.
Status DecodeContentEncoding(std::string_view content_encoding, uint64_t max_request_bytes, std::string& body);

// The reason label of tracery_distributor_requests_refused_total for a DecodeContentEncoding error.
const char* ContentEncodingRefusal(const Status& status);

}  // namespace tracery::receiver
