// JSON audit events: body forms, exact event spans, field extraction, and every
// way a body is refused (with its byte offset).
#include "ingest/json_events.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <sstream>

namespace logseal::ingest {
namespace {

// Holds a body with the padding simdjson may read.
struct Body {
  explicit Body(std::string s) : text(std::move(s)) { text.reserve(text.size() + kJsonPaddingBytes); }
  std::string text;
};

struct Parsed {
  bool ok = false;
  std::vector<JsonEvent> events;
  JsonBodyError error;
  std::vector<std::string> raws;
};

Parsed parse(const std::string& s, JsonBodyForm form = JsonBodyForm::kAuto, bool k8s = false,
             size_t event_max = 1 << 20) {
  Body b(s);
  JsonEventParser p(event_max);
  Parsed r;
  r.ok = p.parse_body(b.text, form, k8s, r.events, r.error);
  for (auto& e : r.events) r.raws.push_back(b.text.substr(e.offset_bytes, e.size_bytes));
  return r;
}

// Fields as a DOM, to check members without depending on member order.
simdjson::dom::element fields_dom(simdjson::dom::parser& p, const std::string& fields) {
  simdjson::dom::element el;
  EXPECT_EQ(p.parse(fields).get(el), simdjson::SUCCESS) << fields;
  return el;
}

std::string corpus_file(const std::string& name) {
  std::string dir = std::getenv("LOGSEAL_CORPUS") ? std::getenv("LOGSEAL_CORPUS")
                                                  : std::string(LOGSEAL_SOURCE_DIR) + "/../shared/corpus";
  std::ifstream f(dir + "/k8s-audit-HANDWRITTEN/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(JsonEvents, ContentTypeChoosesTheForm) {
  EXPECT_EQ(body_form_from_content_type("application/json"), JsonBodyForm::kJson);
  EXPECT_EQ(body_form_from_content_type("Application/JSON; charset=utf-8"), JsonBodyForm::kJson);
  EXPECT_EQ(body_form_from_content_type("application/x-ndjson"), JsonBodyForm::kNdjson);
  EXPECT_EQ(body_form_from_content_type("application/jsonl"), JsonBodyForm::kNdjson);
  EXPECT_EQ(body_form_from_content_type("application/x-www-form-urlencoded"), JsonBodyForm::kAuto);
  EXPECT_EQ(body_form_from_content_type(""), JsonBodyForm::kAuto);
}

TEST(JsonEvents, NdjsonLinesAreEventsWithTheirExactBytes) {
  std::string body = "{\"a\":1}\n\n  {\"b\":\"x y\"}\r\n{\"c\":[1,2,{\"d\":null}]}";
  for (auto form : {JsonBodyForm::kNdjson, JsonBodyForm::kAuto}) {
    Parsed r = parse(body, form);
    ASSERT_TRUE(r.ok) << r.error.reason;
    ASSERT_EQ(r.raws.size(), 3u);
    EXPECT_EQ(r.raws[0], "{\"a\":1}");
    EXPECT_EQ(r.raws[1], "{\"b\":\"x y\"}");
    EXPECT_EQ(r.raws[2], "{\"c\":[1,2,{\"d\":null}]}");
    EXPECT_EQ(r.events[1].offset_bytes, body.find("{\"b\""));
  }
}

TEST(JsonEvents, ArrayElementsAreEventsWithTheirExactBytes) {
  std::string body = " [ {\"a\" : 1 } ,\n{\"b\":{\"c\":\"}\"}}]\n";
  for (auto form : {JsonBodyForm::kJson, JsonBodyForm::kAuto}) {
    Parsed r = parse(body, form);
    ASSERT_TRUE(r.ok) << r.error.reason;
    ASSERT_EQ(r.raws.size(), 2u);
    EXPECT_EQ(r.raws[0], "{\"a\" : 1 }");
    EXPECT_EQ(r.raws[1], "{\"b\":{\"c\":\"}\"}}");
  }
}

TEST(JsonEvents, OnePrettyPrintedObjectIsOneEventEvenWithoutContentType) {
  std::string body = "{\n  \"user\": \"alice\",\n  \"action\": \"login\"\n}\n";
  Parsed r = parse(body, JsonBodyForm::kAuto);
  ASSERT_TRUE(r.ok) << r.error.reason;
  ASSERT_EQ(r.raws.size(), 1u);
  EXPECT_EQ(r.raws[0], body.substr(0, body.size() - 1));
}

TEST(JsonEvents, GenericFieldsKeepTopLevelScalarsOnly) {
  std::string long_string(kEventStringBytesMax + 1, 'x');
  std::string body = "{\"user\":\"zo\\u00eb \\\"q\\\"\",\"n\":-3,\"big\":18446744073709551615,\"f\":1.5,\"ok\":true,"
                     "\"none\":null,\"obj\":{\"x\":1},\"arr\":[1],\"long\":\"" + long_string + "\"}";
  Parsed r = parse(body);
  ASSERT_TRUE(r.ok) << r.error.reason;
  ASSERT_EQ(r.events.size(), 1u);
  simdjson::dom::parser p;
  auto f = fields_dom(p, r.events[0].fields);
  EXPECT_EQ(std::string_view(f["event"]["user"].get_string().value()), "zo\xc3\xab \"q\"");
  EXPECT_EQ(int64_t(f["event"]["n"].get_int64().value()), -3);
  EXPECT_EQ(uint64_t(f["event"]["big"].get_uint64().value()), 18446744073709551615ull);
  EXPECT_EQ(double(f["event"]["f"].get_double().value()), 1.5);
  EXPECT_TRUE(bool(f["event"]["ok"].get_bool().value()));
  EXPECT_TRUE(f["event"]["none"].is_null());
  EXPECT_EQ(f["event"]["obj"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(f["event"]["arr"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(f["event"]["long"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(r.events[0].fields[0], '{');
}

TEST(JsonEvents, GenericFieldsAreCapped) {
  std::string body = "{";
  for (size_t i = 0; i < kEventFieldsMax + 10; ++i) body += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  body += "}";
  Parsed r = parse(body);
  ASSERT_TRUE(r.ok);
  simdjson::dom::parser p;
  auto f = fields_dom(p, r.events[0].fields);
  EXPECT_EQ(f["event"].get_object().value().size(), kEventFieldsMax);
}

TEST(JsonEvents, CorpusEventListsGiveK8sFieldsPerItem) {
  for (auto [name, count] : {std::pair{"webhook-batch1.HANDWRITTEN-from-schema.json", 5},
                             std::pair{"webhook-batch2.HANDWRITTEN-from-schema.json", 3}}) {
    std::string body = corpus_file(name);
    if (body.empty()) GTEST_SKIP() << "no corpus";
    Parsed r = parse(body, JsonBodyForm::kJson, true);
    ASSERT_TRUE(r.ok) << name << ": " << r.error.reason;
    ASSERT_EQ(r.events.size(), static_cast<size_t>(count)) << name;
    // Each raw is exactly the item, as a DOM parse of the whole list sees it.
    simdjson::dom::parser whole;
    simdjson::dom::element list;
    ASSERT_EQ(whole.parse(body).get(list), simdjson::SUCCESS);
    simdjson::dom::array items = list["items"].get_array().value();
    size_t i = 0;
    for (simdjson::dom::element item : items) {
      simdjson::dom::parser p1, p2;
      simdjson::dom::element from_raw = p1.parse(r.raws[i]).value();
      EXPECT_EQ(simdjson::minify(from_raw), simdjson::minify(item)) << name << " item " << i;
      EXPECT_EQ(r.raws[i].front(), '{');
      EXPECT_EQ(r.raws[i].back(), '}');
      auto f = fields_dom(p2, r.events[i].fields);
      EXPECT_EQ(std::string_view(f["k8s"]["auditID"].get_string().value()),
                std::string_view(item["auditID"].get_string().value()));
      EXPECT_EQ(std::string_view(f["k8s"]["verb"].get_string().value()),
                std::string_view(item["verb"].get_string().value()));
      EXPECT_EQ(std::string_view(f["k8s"]["user"]["username"].get_string().value()),
                std::string_view(item["user"]["username"].get_string().value()));
      std::string_view resource;
      if (item["objectRef"]["resource"].get_string().get(resource) == simdjson::SUCCESS) {
        EXPECT_EQ(std::string_view(f["k8s"]["objectRef"]["resource"].get_string().value()), resource);
      } else {
        EXPECT_EQ(f["k8s"]["objectRef"].error(), simdjson::NO_SUCH_FIELD);  // a non-resource URL
      }
      EXPECT_EQ(std::string_view(f["k8s"]["stageTimestamp"].get_string().value()),
                std::string_view(item["stageTimestamp"].get_string().value()));
      EXPECT_EQ(f["k8s"]["requestObject"].error(), simdjson::NO_SUCH_FIELD);  // not extracted
      int64_t code;
      if (item["responseStatus"]["code"].get_int64().get(code) == simdjson::SUCCESS) {
        EXPECT_EQ(int64_t(f["k8s"]["responseStatus"]["code"].get_int64().value()), code);
      }
      ++i;
    }
  }
}

TEST(JsonEvents, K8sFieldsShape) {
  std::string ev =
      "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"id-1\","
      "\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/ns/secrets/s\",\"verb\":\"get\","
      "\"user\":{\"username\":\"alice\",\"groups\":[\"g1\",\"g2\"],\"extra\":{\"x\":[\"y\"]}},"
      "\"sourceIPs\":[\"192.0.2.1\",\"2001:db8::1\"],\"objectRef\":{\"resource\":\"secrets\",\"namespace\":\"ns\","
      "\"name\":\"s\",\"apiGroup\":\"\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},\"code\":403},"
      "\"requestReceivedTimestamp\":\"2026-01-01T00:00:00.000001Z\",\"stageTimestamp\":\"2026-01-01T00:00:00.000002Z\"}";
  // A lone audit.k8s.io Event on /v1/events (or a jsonl line) is recognised.
  Parsed r = parse(ev);
  ASSERT_TRUE(r.ok) << r.error.reason;
  EXPECT_EQ(r.events[0].fields,
            "{\"k8s\":{\"auditID\":\"id-1\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"level\":\"Metadata\","
            "\"requestURI\":\"/api/v1/namespaces/ns/secrets/s\",\"user\":{\"username\":\"alice\",\"groups\":[\"g1\","
            "\"g2\"]},\"sourceIPs\":[\"192.0.2.1\",\"2001:db8::1\"],\"objectRef\":{\"resource\":\"secrets\","
            "\"namespace\":\"ns\",\"name\":\"s\",\"apiGroup\":\"\",\"apiVersion\":\"v1\"},\"responseStatus\":"
            "{\"code\":403},\"requestReceivedTimestamp\":\"2026-01-01T00:00:00.000001Z\",\"stageTimestamp\":"
            "\"2026-01-01T00:00:00.000002Z\"}}");
  // On the Kubernetes endpoint a single Event is taken as one event too.
  Parsed one = parse(ev, JsonBodyForm::kJson, true);
  ASSERT_TRUE(one.ok) << one.error.reason;
  EXPECT_EQ(one.raws.at(0), ev);
  // A line that is not audit.k8s.io stays generic.
  Parsed other = parse("{\"kind\":\"Event\",\"apiVersion\":\"v1\",\"verb\":\"get\"}");
  ASSERT_TRUE(other.ok);
  EXPECT_EQ(other.events[0].fields.rfind("{\"event\":", 0), 0u);
}

TEST(JsonEvents, EmptyEventListIsNoEvents) {
  Parsed r = parse("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[]}",
                   JsonBodyForm::kJson, true);
  ASSERT_TRUE(r.ok) << r.error.reason;
  EXPECT_TRUE(r.events.empty());
}

TEST(JsonEvents, EventListMembersOtherThanItemsAreValidatedAndSkipped) {
  // Scalars, objects and arrays beside items, in any order.
  Parsed r = parse("{\"items\":[{\"auditID\":\"a\"}],\"x\":1,\"y\":\"s\",\"z\":null,\"metadata\":"
                   "{\"resourceVersion\":\"5\"},\"w\":[1,{\"v\":true}],\"kind\":\"EventList\","
                   "\"apiVersion\":\"audit.k8s.io/v1\"}",
                   JsonBodyForm::kJson, true);
  ASSERT_TRUE(r.ok) << r.error.reason;
  ASSERT_EQ(r.raws.size(), 1u);
  EXPECT_EQ(r.raws[0], "{\"auditID\":\"a\"}");
  EXPECT_EQ(r.events[0].fields, "{\"k8s\":{\"auditID\":\"a\"}}");
}

struct Bad {
  const char* what;
  std::string body;
  JsonBodyForm form;
  bool k8s;
  size_t offset;  // expected error offset; SIZE_MAX: any
  const char* reason_part;
};

TEST(JsonEvents, MalformedBodiesAreRefusedWithReasonAndOffset) {
  std::string deep = "[{\"a\":" + std::string(1000, '[') + std::string(1000, ']') + "}]";
  std::string deep_obj = "{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}";
  std::vector<Bad> cases = {
      {"truncated object", "{\"a\":1,\"b\":", JsonBodyForm::kAuto, false, SIZE_MAX, "malformed JSON"},
      {"truncated array", "[{\"a\":1},{\"b\":2}", JsonBodyForm::kJson, false, SIZE_MAX, "malformed JSON"},
      {"invalid UTF-8", "{\"a\":\"\xff\xfe\"}", JsonBodyForm::kAuto, false, SIZE_MAX, "UTF-8"},
      {"invalid UTF-8 in NDJSON line 2", "{\"a\":1}\n{\"b\":\"\xc3\"}\n", JsonBodyForm::kNdjson, false, SIZE_MAX,
       "event 2"},
      {"deep nesting", deep, JsonBodyForm::kJson, false, SIZE_MAX, "malformed JSON"},
      {"deep nesting in an object", deep_obj, JsonBodyForm::kAuto, false, SIZE_MAX, "malformed JSON"},
      {"trailing comma", "{\"a\":1,}", JsonBodyForm::kAuto, false, SIZE_MAX, "malformed JSON"},
      {"bad literal in event 2", "[{\"a\":1},{\"b\":tru}]", JsonBodyForm::kJson, false, SIZE_MAX, "event 2"},
      {"array of non-objects", "[{\"a\":1},2]", JsonBodyForm::kJson, false, 9, "not a JSON object"},
      {"NDJSON line not an object", "{\"a\":1}\n[1]\n", JsonBodyForm::kNdjson, false, 8, "one JSON object"},
      {"NDJSON sent as application/json", "{\"a\":1}\n{\"b\":2}\n", JsonBodyForm::kJson, false, SIZE_MAX,
       "content after"},
      {"garbage after array", "[{\"a\":1}] x", JsonBodyForm::kJson, false, SIZE_MAX, "content after"},
      {"scalar body", "42", JsonBodyForm::kAuto, false, SIZE_MAX, "expected"},
      {"empty body", "  \n", JsonBodyForm::kAuto, false, 0, "empty body"},
      {"EventList with another apiVersion",
       "{\"kind\":\"EventList\",\"apiVersion\":\"v1\",\"items\":[{\"auditID\":\"x\"}]}", JsonBodyForm::kJson, true, 0,
       "audit.k8s.io"},
      {"EventList without items", "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\"}", JsonBodyForm::kJson,
       true, 0, "EventList"},
      {"EventList with a broken metadata", "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":"
       "{\"x\":01},\"items\":[]}", JsonBodyForm::kJson, true, SIZE_MAX, "malformed JSON"},
      {"EventList item truncated", "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{\"a\":",
       JsonBodyForm::kJson, true, SIZE_MAX, "malformed"},
  };
  for (const Bad& c : cases) {
    Parsed r = parse(c.body, c.form, c.k8s);
    EXPECT_FALSE(r.ok) << c.what;
    EXPECT_TRUE(r.events.empty()) << c.what;
    EXPECT_EQ(r.error.kind, JsonBodyError::Kind::kMalformed) << c.what;
    EXPECT_NE(r.error.reason.find(c.reason_part), std::string::npos) << c.what << ": " << r.error.reason;
    EXPECT_LE(r.error.offset_bytes, c.body.size()) << c.what;
    if (c.offset != SIZE_MAX) {
      EXPECT_EQ(r.error.offset_bytes, c.offset) << c.what << ": " << r.error.reason;
    }
  }
}

TEST(JsonEvents, ErrorOffsetPointsAtTheProblem) {
  // The bad token sits at a known place: inside the second NDJSON line.
  std::string body = "{\"a\":1}\n{\"b\":2,\"c\":nul}\n";
  Parsed r = parse(body, JsonBodyForm::kNdjson);
  ASSERT_FALSE(r.ok);
  EXPECT_GE(r.error.offset_bytes, body.find("{\"b\""));
  EXPECT_LE(r.error.offset_bytes, body.find("nul}") + 4);
  // In an array: after the first element.
  std::string arr = "[{\"a\":1},{\"b\":[1,2,}]";
  Parsed a = parse(arr, JsonBodyForm::kJson);
  ASSERT_FALSE(a.ok);
  EXPECT_GE(a.error.offset_bytes, arr.find("{\"b\"")) << a.error.reason;
}

TEST(JsonEvents, InvalidUtf8IsReportedAtItsByte) {
  std::string arr = "[{\"a\":\"ok \xc3\xa9\"},{\"b\":\"bad \xed\xa0\x80\"}]";  // a UTF-16 surrogate
  Parsed a = parse(arr, JsonBodyForm::kJson);
  ASSERT_FALSE(a.ok);
  EXPECT_EQ(a.error.offset_bytes, arr.find("\xed")) << a.error.reason;
  std::string nd = "{\"a\":1}\n{\"b\":\"\xc0\xaf\"}\n";  // an overlong '/'
  Parsed n = parse(nd, JsonBodyForm::kNdjson);
  ASSERT_FALSE(n.ok);
  EXPECT_EQ(n.error.offset_bytes, nd.find("\xc0")) << n.error.reason;
}

TEST(JsonEvents, OversizeEventIsTooLarge) {
  std::string big = "{\"a\":\"" + std::string(2000, 'x') + "\"}";
  Parsed r = parse("{\"small\":1}\n" + big + "\n", JsonBodyForm::kNdjson, false, 1024);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error.kind, JsonBodyError::Kind::kTooLarge);
  EXPECT_EQ(r.error.offset_bytes, 12u);
  EXPECT_NE(r.error.reason.find("event 2"), std::string::npos) << r.error.reason;
}

TEST(JsonEvents, ParseEventForJsonlLines) {
  JsonEventParser p(1 << 16);
  Body ok("{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a\",\"verb\":\"list\"}");
  std::string fields;
  JsonBodyError err;
  ASSERT_TRUE(p.parse_event(ok.text, false, fields, err)) << err.reason;
  EXPECT_EQ(fields, "{\"k8s\":{\"auditID\":\"a\",\"verb\":\"list\"}}");
  Body bad("{\"a\":[1,2,3}");
  EXPECT_FALSE(p.parse_event(bad.text, false, fields, err));
  EXPECT_NE(err.reason.find("malformed JSON"), std::string::npos);
  EXPECT_GT(err.offset_bytes, 0u);
  EXPECT_LE(err.offset_bytes, bad.text.size());
}

}  // namespace
}  // namespace logseal::ingest
