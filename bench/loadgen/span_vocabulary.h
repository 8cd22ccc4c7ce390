// Words the generated spans are made of: attribute setters, failure messages, user agents,
// and the small parsers that derive semantic-convention attributes from a step's text.
#pragma once

#include <random>
#include <string>
#include <string_view>

#include "loadgen/shop_model.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracery::bench {

void AddString(opentelemetry::proto::trace::v1::Span& span, std::string_view key,
               std::string_view value);
void AddInt(opentelemetry::proto::trace::v1::Span& span, std::string_view key, int64_t value);
void AddEventString(opentelemetry::proto::trace::v1::Span::Event& event, std::string_view key,
                    std::string_view value);

struct Failure {
  std::string_view exception_type;
  std::string_view message;
};

const Failure& RandomHandlerFailure(Language language, std::mt19937_64& random);
const Failure& RandomSqlFailure(std::mt19937_64& random);
const Failure& RandomCacheFailure(std::mt19937_64& random);
int RandomUpstreamErrorStatus(std::mt19937_64& random);
std::string_view RandomLogMessage(std::mt19937_64& random);
std::string_view RandomUserAgent(std::mt19937_64& random);
std::string RandomClientAddress(std::mt19937_64& random);

// 201 for POST, 204 for DELETE, 200 otherwise: what REST handlers usually answer.
int SuccessStatusFor(std::string_view method);

// The table a SQL statement works on (after FROM, INTO or UPDATE); empty for BEGIN/COMMIT.
std::string_view SqlTableOf(std::string_view statement);

// "api.stripe.com" from "https://api.stripe.com/v1/payment_intents".
std::string_view HostOfUrl(std::string_view url);

}  // namespace tracery::bench
