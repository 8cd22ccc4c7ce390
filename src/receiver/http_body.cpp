#include "receiver/http_body.h"

#include <cctype>

#include "common/compression.h"

namespace tracery::receiver {

std::string MediaType(std::string_view header_value) {
  std::string_view media = header_value.substr(0, header_value.find(';'));
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  std::string out(media);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<std::string> RequestTenant(const HttpRequest& request, distributor::Distributor& distributor) {
  std::optional<std::string_view> org_id;
  if (auto it = request.find("X-Scope-OrgID"); it != request.end()) org_id = std::string_view(it->value());
  auto tenant = distributor.ResolveTenant(org_id);
  if (!tenant.ok()) distributor.CountRefused("bad_tenant", request.body().size());
  return tenant;
}

Status DecodeContentEncoding(std::string_view content_encoding, uint64_t max_request_bytes, std::string& body) {
  const std::string encoding = MediaType(content_encoding);
  const bool gzip = encoding == "gzip" || encoding == "x-gzip";
  if (gzip || encoding == "deflate") {
    auto plain = InflateLimited(body, max_request_bytes, gzip ? CompressedFormat::kGzip : CompressedFormat::kZlib);
    if (!plain.ok()) return plain.status();
    body = std::move(plain).value();
    return Status::Ok();
  }
  if (!encoding.empty() && encoding != "identity")
    return Status::UnsupportedMedia("unsupported content encoding '" + encoding + "': use gzip, deflate or identity");
  return Status::Ok();
}

const char* ContentEncodingRefusal(const Status& status) {
  switch (status.code()) {
    case StatusCode::kTooLarge: return "too_large";
    case StatusCode::kUnsupportedMedia: return "content_encoding";
    default: return "invalid";
  }
}

}  // namespace tracery::receiver
