#include "loadgen/shop_model.h"

#include <array>

namespace tracery::bench {
namespace {

enum ServiceIndex {
  kFrontend, kProductCatalog, kCart, kCheckout, kPayments, kInventory,
  kRecommendation, kShipping, kEmail, kCurrency, kFraudDetection,
};

constexpr std::array kServices = {
    ServiceDescription{"frontend", "1.42.0", Language::kNode, 2},
    ServiceDescription{"product-catalog", "2.3.1", Language::kGo, 2},
    ServiceDescription{"cart", "1.8.4", Language::kGo, 1},
    ServiceDescription{"checkout", "4.1.0", Language::kJava, 2},
    ServiceDescription{"payments", "3.0.2", Language::kJava, 1},
    ServiceDescription{"inventory", "1.12.0", Language::kGo, 1},
    ServiceDescription{"recommendation", "0.9.7", Language::kPython, 2},
    ServiceDescription{"shipping", "1.4.3", Language::kRust, 1},
    ServiceDescription{"email", "2.0.1", Language::kPython, 1},
    ServiceDescription{"currency", "1.3.0", Language::kNode, 1},
    ServiceDescription{"fraud-detection", "0.7.2", Language::kJava, 1},
};

// Endpoint indices; the order must match kEndpoints below.
enum EndpointIndex {
  kFrontendHome, kFrontendProduct, kFrontendAddToCart, kFrontendViewCart,
  kFrontendCheckout, kFrontendOrderStatus,
  kCatalogGetProduct, kCatalogListProducts,
  kCartGet, kCartAddItem, kCartEmpty,
  kCheckoutPlaceOrder, kCheckoutGetOrder,
  kPaymentsCharge,
  kInventoryReserve,
  kRecommendationList,
  kShippingQuote,
  kEmailOrderConfirmation,
  kCurrencyConvert,
  kFraudAuditPayment,
};

using enum StepKind;

constexpr Step kFrontendHomeSteps[] = {
    {.kind = kCacheCommand, .text = "GET session:{sessionId}", .probability = 0.9},
    {.kind = kCallEndpoint, .target = kCatalogListProducts},
    {.kind = kCallEndpoint, .target = kRecommendationList, .probability = 0.8},
    {.kind = kCallEndpoint, .target = kCartGet, .probability = 0.7},
    {.kind = kCallEndpoint, .target = kCurrencyConvert, .probability = 0.4},
    {.kind = kInternal, .text = "render home", .typical_ms = 3},
};
constexpr Step kFrontendProductSteps[] = {
    {.kind = kCacheCommand, .text = "GET session:{sessionId}", .probability = 0.9},
    {.kind = kCallEndpoint, .target = kCatalogGetProduct},
    {.kind = kCallEndpoint, .target = kRecommendationList, .probability = 0.6},
    {.kind = kCallEndpoint, .target = kCurrencyConvert, .probability = 0.4},
    {.kind = kInternal, .text = "render product", .probability = 0.5},
};
constexpr Step kFrontendAddToCartSteps[] = {
    {.kind = kCacheCommand, .text = "GET session:{sessionId}"},
    {.kind = kCallEndpoint, .target = kCatalogGetProduct},
    {.kind = kCallEndpoint, .target = kCartAddItem},
};
constexpr Step kFrontendViewCartSteps[] = {
    {.kind = kCacheCommand, .text = "GET session:{sessionId}"},
    {.kind = kCallEndpoint, .target = kCartGet},
    {.kind = kCallEndpoint, .target = kCatalogGetProduct, .min_repeat = 1, .max_repeat = 6,
     .parallel = true},
    {.kind = kCallEndpoint, .target = kShippingQuote, .probability = 0.5},
};
constexpr Step kFrontendCheckoutSteps[] = {
    {.kind = kCacheCommand, .text = "GET session:{sessionId}"},
    {.kind = kCallEndpoint, .target = kCheckoutPlaceOrder},
    {.kind = kInternal, .text = "render order confirmation"},
};
constexpr Step kFrontendOrderStatusSteps[] = {
    {.kind = kCacheCommand, .text = "GET session:{sessionId}"},
    {.kind = kCallEndpoint, .target = kCheckoutGetOrder},
};
constexpr Step kCatalogGetProductSteps[] = {
    {.kind = kCacheCommand, .text = "GET product:{productId}"},
    {.kind = kSqlQuery,
     .text = "SELECT id, name, description, price_cents, currency, picture_url, categories "
             "FROM products WHERE id = $1",
     .probability = 0.35},
    {.kind = kCacheCommand, .text = "SETEX product:{productId} 300 ?", .probability = 0.3},
};
constexpr Step kCatalogListProductsSteps[] = {
    {.kind = kCacheCommand, .text = "GET catalog:page:{page}"},
    {.kind = kSqlQuery,
     .text = "SELECT id, name, price_cents, currency FROM products WHERE category_id = $1 "
             "ORDER BY popularity DESC LIMIT 24 OFFSET $2",
     .probability = 0.5},
    {.kind = kSqlQuery,
     .text = "SELECT product_id, url, width, height FROM product_images WHERE product_id = "
             "ANY($1)",
     .probability = 0.5},
};
constexpr Step kCartGetSteps[] = {
    {.kind = kCacheCommand, .text = "HGETALL cart:{userId}"},
};
constexpr Step kCartAddItemSteps[] = {
    {.kind = kCacheCommand, .text = "HGETALL cart:{userId}"},
    {.kind = kCacheCommand, .text = "HINCRBY cart:{userId} {productId} ?"},
    {.kind = kCacheCommand, .text = "EXPIRE cart:{userId} 604800"},
};
constexpr Step kCartEmptySteps[] = {
    {.kind = kCacheCommand, .text = "DEL cart:{userId}"},
};
constexpr Step kCheckoutPlaceOrderSteps[] = {
    {.kind = kCallEndpoint, .target = kCartGet},
    // One catalog lookup per cart item: the N+1 pattern most real checkouts have.
    {.kind = kCallEndpoint, .target = kCatalogGetProduct, .min_repeat = 1, .max_repeat = 5},
    {.kind = kCallEndpoint, .target = kCurrencyConvert, .probability = 0.3},
    {.kind = kCallEndpoint, .target = kShippingQuote},
    {.kind = kCallEndpoint, .target = kInventoryReserve},
    {.kind = kCallEndpoint, .target = kPaymentsCharge},
    {.kind = kSqlQuery,
     .text = "INSERT INTO orders (id, user_id, total_cents, currency, shipping_address_id, "
             "status, created_at) VALUES ($1, $2, $3, $4, $5, 'placed', now())"},
    {.kind = kSqlQuery,
     .text = "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) "
             "VALUES ($1, $2, $3, $4)",
     .min_repeat = 1, .max_repeat = 4},
    {.kind = kPublish, .target = kEmailOrderConfirmation, .text = "orders.created"},
    {.kind = kCallEndpoint, .target = kCartEmpty},
};
constexpr Step kCheckoutGetOrderSteps[] = {
    {.kind = kSqlQuery,
     .text = "SELECT id, user_id, total_cents, currency, status, created_at FROM orders "
             "WHERE id = $1"},
    {.kind = kSqlQuery,
     .text = "SELECT product_id, quantity, unit_price_cents FROM order_items WHERE order_id "
             "= $1"},
};
constexpr Step kPaymentsChargeSteps[] = {
    {.kind = kSqlQuery,
     .text = "SELECT id, provider, token FROM payment_methods WHERE user_id = $1 AND "
             "is_default"},
    {.kind = kInternal, .text = "risk score", .typical_ms = 4},
    {.kind = kExternalCall, .text = "POST https://api.stripe.com/v1/payment_intents"},
    {.kind = kSqlQuery,
     .text = "INSERT INTO payments (order_id, amount_cents, currency, provider_ref, status) "
             "VALUES ($1, $2, $3, $4, $5)"},
    {.kind = kPublish, .target = kFraudAuditPayment, .text = "payments.audit",
     .probability = 0.5},
};
constexpr Step kInventoryReserveSteps[] = {
    {.kind = kSqlQuery, .text = "BEGIN"},
    {.kind = kSqlQuery,
     .text = "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2 AND available - "
             "reserved >= $1",
     .min_repeat = 1, .max_repeat = 4},
    {.kind = kSqlQuery,
     .text = "INSERT INTO reservations (order_id, sku, quantity, expires_at) VALUES ($1, $2, "
             "$3, now() + interval '15 minutes')"},
    {.kind = kSqlQuery, .text = "COMMIT"},
    {.kind = kCacheCommand, .text = "DEL stock:{productId}", .probability = 0.5},
};
constexpr Step kRecommendationListSteps[] = {
    {.kind = kCacheCommand, .text = "GET recs:user:{userId}"},
    {.kind = kInternal, .text = "model predict", .probability = 0.6, .typical_ms = 12},
    {.kind = kCallEndpoint, .target = kCatalogGetProduct, .probability = 0.7, .min_repeat = 1,
     .max_repeat = 3, .parallel = true},
};
constexpr Step kShippingQuoteSteps[] = {
    {.kind = kSqlQuery,
     .text = "SELECT zone, base_cents, per_kg_cents FROM shipping_rates WHERE country = $1 "
             "AND carrier = ANY($2)"},
    {.kind = kInternal, .text = "compute quote"},
    {.kind = kExternalCall, .text = "POST https://api.carrier.example/v2/rates",
     .probability = 0.3},
};
constexpr Step kEmailOrderConfirmationSteps[] = {
    {.kind = kSqlQuery,
     .text = "SELECT email, first_name, locale FROM users WHERE id = $1"},
    {.kind = kInternal, .text = "render template order-confirmation", .typical_ms = 3},
    {.kind = kExternalCall, .text = "POST https://api.sendgrid.com/v3/mail/send"},
};
constexpr Step kCurrencyConvertSteps[] = {
    {.kind = kCacheCommand, .text = "GET fx:rates:{currency}"},
    {.kind = kExternalCall, .text = "GET https://api.exchangerate.example/latest",
     .probability = 0.05},
};
constexpr Step kFraudAuditPaymentSteps[] = {
    {.kind = kInternal, .text = "rules evaluate"},
    {.kind = kSqlQuery,
     .text = "INSERT INTO payment_audit (payment_id, score, rules_fired, created_at) VALUES "
             "($1, $2, $3, now())"},
};

constexpr std::array kEndpoints = {
    EndpointDescription{kFrontend, "GET", "/", 2.5, kFrontendHomeSteps},
    EndpointDescription{kFrontend, "GET", "/api/products/{productId}", 1.5,
                        kFrontendProductSteps},
    EndpointDescription{kFrontend, "POST", "/api/cart/items", 1.0, kFrontendAddToCartSteps},
    EndpointDescription{kFrontend, "GET", "/api/cart", 1.2, kFrontendViewCartSteps},
    EndpointDescription{kFrontend, "POST", "/api/checkout", 2.0, kFrontendCheckoutSteps},
    EndpointDescription{kFrontend, "GET", "/api/orders/{orderId}", 0.8,
                        kFrontendOrderStatusSteps},
    EndpointDescription{kProductCatalog, "GET", "/products/{productId}", 0.3,
                        kCatalogGetProductSteps},
    EndpointDescription{kProductCatalog, "GET", "/products", 0.6, kCatalogListProductsSteps},
    EndpointDescription{kCart, "GET", "/cart/{userId}", 0.2, kCartGetSteps},
    EndpointDescription{kCart, "POST", "/cart/{userId}/items", 0.3, kCartAddItemSteps},
    EndpointDescription{kCart, "DELETE", "/cart/{userId}", 0.2, kCartEmptySteps},
    EndpointDescription{kCheckout, "POST", "/orders", 3.0, kCheckoutPlaceOrderSteps},
    EndpointDescription{kCheckout, "GET", "/orders/{orderId}", 0.8, kCheckoutGetOrderSteps},
    EndpointDescription{kPayments, "POST", "/charges", 1.5, kPaymentsChargeSteps},
    EndpointDescription{kInventory, "POST", "/reservations", 0.5, kInventoryReserveSteps},
    EndpointDescription{kRecommendation, "GET", "/recommendations", 4.0,
                        kRecommendationListSteps},
    EndpointDescription{kShipping, "POST", "/quotes", 0.4, kShippingQuoteSteps},
    EndpointDescription{kEmail, "", "orders.created", 1.0, kEmailOrderConfirmationSteps},
    EndpointDescription{kCurrency, "GET", "/convert", 0.2, kCurrencyConvertSteps},
    EndpointDescription{kFraudDetection, "", "payments.audit", 2.0, kFraudAuditPaymentSteps},
};
static_assert(kEndpoints.size() == kFraudAuditPayment + 1);

constexpr std::array kEntryPoints = {
    EntryPoint{kFrontendHome, 20},     EntryPoint{kFrontendProduct, 35},
    EntryPoint{kFrontendAddToCart, 12}, EntryPoint{kFrontendViewCart, 12},
    EntryPoint{kFrontendCheckout, 8},  EntryPoint{kFrontendOrderStatus, 13},
};

}  // namespace

std::span<const ServiceDescription> Services() { return kServices; }
std::span<const EndpointDescription> Endpoints() { return kEndpoints; }
std::span<const EntryPoint> EntryPoints() { return kEntryPoints; }

ScopeDescription ScopeFor(Language language, ScopeCategory category) {
  using enum ScopeCategory;
  switch (language) {
    case Language::kNode:
      switch (category) {
        case kHttp: return {"@opentelemetry/instrumentation-http", "0.52.1"};
        case kDatabase: return {"@opentelemetry/instrumentation-pg", "0.43.0"};
        case kCache: return {"@opentelemetry/instrumentation-ioredis", "0.42.0"};
        case kMessaging: return {"@opentelemetry/instrumentation-kafkajs", "0.2.0"};
        case kApplication: return {"shop-web", "1.0.0"};
      }
      break;
    case Language::kGo:
      switch (category) {
        case kHttp:
          return {"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.53.0"};
        case kDatabase: return {"github.com/XSAM/otelsql", "0.32.0"};
        case kCache: return {"github.com/redis/go-redis/extra/redisotel", "9.5.1"};
        case kMessaging: return {"github.com/IBM/sarama/otelsarama", "0.43.0"};
        case kApplication: return {"shop/internal/service", ""};
      }
      break;
    case Language::kJava:
      switch (category) {
        case kHttp: return {"io.opentelemetry.spring-webmvc-6.0", "2.6.0-alpha"};
        case kDatabase: return {"io.opentelemetry.jdbc", "2.6.0-alpha"};
        case kCache: return {"io.opentelemetry.lettuce-5.1", "2.6.0-alpha"};
        case kMessaging: return {"io.opentelemetry.kafka-clients-2.6", "2.6.0-alpha"};
        case kApplication: return {"com.shop.service", "1.0"};
      }
      break;
    case Language::kPython:
      switch (category) {
        case kHttp: return {"opentelemetry.instrumentation.flask", "0.47b0"};
        case kDatabase: return {"opentelemetry.instrumentation.psycopg2", "0.47b0"};
        case kCache: return {"opentelemetry.instrumentation.redis", "0.47b0"};
        case kMessaging: return {"opentelemetry.instrumentation.kafka", "0.47b0"};
        case kApplication: return {"shop.service", ""};
      }
      break;
    case Language::kRust:
      switch (category) {
        case kHttp: return {"axum-tracing-opentelemetry", "0.19.0"};
        case kDatabase: return {"sqlx", "0.7.4"};
        case kCache: return {"redis", "0.25.3"};
        case kMessaging: return {"rdkafka", "0.36.2"};
        case kApplication: return {"shipping", "1.4.3"};
      }
      break;
  }
  return {"unknown", ""};
}

std::string_view SdkLanguageName(Language language) {
  switch (language) {
    case Language::kNode: return "nodejs";
    case Language::kGo: return "go";
    case Language::kJava: return "java";
    case Language::kPython: return "python";
    case Language::kRust: return "rust";
  }
  return "unknown";
}

std::string_view SdkVersion(Language language) {
  switch (language) {
    case Language::kNode: return "1.25.1";
    case Language::kGo: return "1.28.0";
    case Language::kJava: return "1.40.0";
    case Language::kPython: return "1.26.0";
    case Language::kRust: return "0.24.0";
  }
  return "0.0.0";
}

}  // namespace tracery::bench
