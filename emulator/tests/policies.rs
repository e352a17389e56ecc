//! Policies: validation with line and column, byte-exact rawxml round trips, xml export, scopes.

mod common;

use aigw_emulator::sandbox_service_id;
use common::*;
use serde_json::json;

fn rawxml(value: &str) -> serde_json::Value {
    json!({"properties": {"format": "rawxml", "value": value}})
}

async fn raw_policy(e: &Emu, rel: &str) -> (String, String) {
    let r = e.get(&format!("{rel}?format=rawxml")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["properties"]["format"], "rawxml");
    (r.body["properties"]["value"].as_str().unwrap().to_string(), r.etag())
}

#[tokio::test]
async fn a_rawxml_policy_round_trips_byte_for_byte_after_an_in_place_edit() {
    let e = Emu::start().await;
    let (xml, etag) = raw_policy(&e, "/apis/inference-api/policies/policy").await;
    let edited = xml.replacen("tokens-per-minute=\"200000\"", "tokens-per-minute=\"100000\"", 1);
    assert_ne!(edited, xml);
    let r = e.put_if("/apis/inference-api/policies/policy", rawxml(&edited), &etag).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["properties"]["value"], edited.as_str());
    let (again, etag2) = raw_policy(&e, "/apis/inference-api/policies/policy").await;
    assert_eq!(again, edited, "stored bytes must equal what was sent");
    assert_ne!(etag2, etag);
    // Comments, quoting, entities and expression text survive untouched.
    assert!(again.contains("<!-- prod-critical: 400k TPM / 2,400 RPM -->"));
    assert!(again.contains("condition='@(context.Subscription.Id == \"prod-critical\")'"));
    assert!(again.contains("&quot;growth&quot;"));
    assert!(again.contains("GetValueOrDefault<int>(\"remainingTokens\", -1)"));
}

#[tokio::test]
async fn line_endings_are_normalised_to_crlf_and_nothing_else_changes() {
    let e = Emu::start().await;
    let sent = "<policies>\n\t<inbound>\n\t\t<base />\n\t\t<!--   spaced   comment -->\n\t\t<set-header name='x' exists-action=\"override\"><value>@(\"a\" + \"b\")</value></set-header>\n\t</inbound>\n</policies>\n";
    let r = e.put("/apis/inference-api/operations/chat-completions/policies/policy", rawxml(sent)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (stored, _) = raw_policy(&e, "/apis/inference-api/operations/chat-completions/policies/policy").await;
    assert_eq!(stored, sent.replace('\n', "\r\n"));
    // Sending the normalised text again is a no-op for the bytes.
    e.put("/apis/inference-api/operations/chat-completions/policies/policy", rawxml(&stored)).await;
    let (again, _) = raw_policy(&e, "/apis/inference-api/operations/chat-completions/policies/policy").await;
    assert_eq!(again, stored);
}

#[tokio::test]
async fn the_default_xml_format_escapes_expressions_and_is_well_formed() {
    let e = Emu::start().await;
    let r = e.get("/apis/inference-api/policies/policy").await;
    assert_eq!(r.status, 200);
    assert!(r.body["properties"].get("format").is_none());
    let xml = r.body["properties"]["value"].as_str().unwrap();
    assert!(
        xml.contains("GetValueOrDefault&lt;int&gt;(\"remainingTokens\", -1)"),
        "expression text must be escaped in xml format"
    );
    assert!(xml.contains("&amp;&amp;"));
    assert!(xml.contains("<!--"), "comments stay");
    let r = e.get("/apis/inference-api/policies/policy?format=xml").await;
    assert_eq!(r.body["properties"]["format"], "xml");
    let r = e.get("/apis/inference-api/policies/policy?format=json").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn malformed_xml_is_a_validation_error_with_line_and_position() {
    let e = Emu::start().await;
    let bad = "<policies>\r\n\t<inbound>\r\n\t\t<base />\r\n\t\t<set-header name=\"a\" exists-action=\"override\"><value>Tom & Jerry</value></set-header>\r\n\t</inbound>\r\n</policies>";
    let r = e.put("/apis/inference-api/policies/policy", rawxml(bad)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "ValidationError");
    assert_eq!(r.message(), "One or more fields contain incorrect values:");
    let d = &r.body["error"]["details"][0];
    assert_eq!(d["code"], "ValidationError");
    assert_eq!(d["target"], "representation");
    assert_eq!(d["message"], "An error occurred while parsing EntityName. Line 4, position 61.");
    // Nothing was stored.
    let (xml, _) = raw_policy(&e, "/apis/inference-api/policies/policy").await;
    assert!(xml.contains("aoai-pool"));
}

#[tokio::test]
async fn mismatched_tags_report_both_positions() {
    let e = Emu::start().await;
    let r = e.put("/policies/policy", rawxml("<policies>\n  <inbound>\n  </outbound>\n</policies>")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.detail_messages(),
        ["The 'inbound' start tag on line 2 position 4 does not match the end tag of 'outbound'. Line 3, position 5."]
    );
}

#[tokio::test]
async fn a_token_limit_without_its_required_attributes_is_refused_naming_element_line_and_column() {
    let e = Emu::start().await;
    let xml = "<policies>\n\t<inbound>\n\t\t<base />\n\t\t<llm-token-limit tokens-per-minute=\"1000\" />\n\t</inbound>\n</policies>";
    let r = e.put("/apis/inference-api/policies/policy", rawxml(xml)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.detail_messages(),
        [
            "Error in element 'llm-token-limit' on line 4, column 3: The required attribute 'counter-key' is missing.",
            "Error in element 'llm-token-limit' on line 4, column 3: The required attribute 'estimate-prompt-tokens' is missing.",
        ]
    );
    assert!(r.body["error"]["details"].as_array().unwrap().iter().all(|d| d["target"] == "representation"));
}

#[tokio::test]
async fn policies_in_the_wrong_section_or_unknown_are_refused() {
    let e = Emu::start().await;
    let xml = "<policies>\n<inbound>\n<forward-request />\n</inbound>\n<outbound>\n<rate-limit-by-key calls=\"5\" renewal-period=\"60\" counter-key=\"k\" />\n<magic-policy />\n</outbound>\n</policies>";
    let r = e.put("/apis/inference-api/policies/policy", rawxml(xml)).await;
    let m = r.detail_messages();
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(
        m[0],
        "Error in element 'forward-request' on line 3, column 1: Policy is not allowed in the 'inbound' section. Allowed sections: backend."
    );
    assert!(m[1].starts_with(
        "Error in element 'rate-limit-by-key' on line 6, column 1: Policy is not allowed in the 'outbound' section"
    ));
    assert!(m[2].contains("Unknown policy 'magic-policy'"));
}

#[tokio::test]
async fn references_to_missing_named_values_and_backends_are_refused() {
    let e = Emu::start().await;
    let xml = "<policies>\n\t<inbound>\n\t\t<rate-limit-by-key calls=\"{{rpm-growth}}\" renewal-period=\"60\" counter-key=\"@(context.Subscription.Id)\" />\n\t\t<set-backend-service backend-id=\"aoai-westeurope\" />\n\t</inbound>\n</policies>";
    let r = e.put("/apis/inference-api/policies/policy", rawxml(xml)).await;
    assert_eq!(r.status, 400);
    let m = r.detail_messages();
    assert!(m[0].starts_with("Error in element 'rate-limit-by-key' on line 3, column 29: Cannot find a named value with the display name 'rpm-growth'"), "{m:?}");
    assert_eq!(
        m[1],
        "Error in element 'set-backend-service' on line 4, column 24: Backend with id 'aoai-westeurope' could not be found."
    );
    // After creating them, the same document is accepted.
    e.put("/namedValues/rpm-growth", json!({"properties": {"displayName": "rpm-growth", "value": "1200"}})).await;
    e.put(
        "/backends/aoai-westeurope",
        json!({"properties": {"url": "https://aoai-westeurope.openai.azure.com/openai", "protocol": "http"}}),
    )
    .await;
    let r = e.put("/apis/inference-api/policies/policy", rawxml(xml)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn named_value_indirection_is_checked_after_substitution() {
    let e = Emu::start().await;
    e.put("/namedValues/tpm-bad", json!({"properties": {"displayName": "tpm-bad", "value": "lots"}})).await;
    let xml = "<policies><inbound><llm-token-limit counter-key=\"k\" estimate-prompt-tokens=\"false\" tokens-per-minute=\"{{tpm-bad}}\" /></inbound></policies>";
    let r = e.put("/products/aoai/policies/policy", rawxml(xml)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.detail_messages()[0].contains("'tokens-per-minute' must be an integer; it is '{{tpm-bad}}' (= 'lots')"),
        "{:?}",
        r.detail_messages()
    );
}

#[tokio::test]
async fn xml_format_requires_escaped_expressions() {
    let e = Emu::start().await;
    let raw = "<policies><inbound><set-variable name=\"x\" value=\"@(1 < 2)\" /></inbound></policies>";
    let r = e.put("/policies/policy", json!({"properties": {"format": "xml", "value": raw}})).await;
    assert_eq!(r.status, 400);
    assert!(r.detail_messages()[0].contains("invalid attribute character"));
    let r = e.put("/policies/policy", json!({"properties": {"value": raw.replace("1 < 2", "1 &lt; 2")}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = e.put("/policies/policy", rawxml(raw)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn policies_exist_at_global_product_api_and_operation_scope() {
    let e = Emu::start().await;
    let sid = sandbox_service_id();
    let g = e.get("/policies/policy").await;
    assert_eq!(g.body["id"], format!("{sid}/policies/policy"));
    assert_eq!(g.body["type"], "Microsoft.ApiManagement/service/policies");
    let p = e.get("/products/aoai/policies/policy").await;
    assert_eq!(p.body["type"], "Microsoft.ApiManagement/service/products/policies");
    let a = e.get("/apis/inference-api/policies").await;
    assert_eq!(a.body["count"], 1);
    assert_eq!(a.body["value"][0]["name"], "policy");
    assert_eq!(a.body["value"][0]["type"], "Microsoft.ApiManagement/service/apis/policies");
    let o = e.get("/apis/inference-api/operations/chat-completions/policies").await;
    assert_eq!(o.body["count"], 0);
    assert_eq!(e.get("/apis/inference-api/operations/chat-completions/policies/policy").await.status, 404);
    let w = e
        .put(
            "/apis/inference-api/operations/chat-completions/policies/policy",
            rawxml("<policies><inbound><base /></inbound></policies>"),
        )
        .await;
    assert_eq!(w.status, 201);
    assert_eq!(w.body["type"], "Microsoft.ApiManagement/service/apis/operations/policies");
    assert_eq!(e.get("/apis/nope/policies/policy").await.status, 404);
    let bad = e.put("/apis/inference-api/policies/other", rawxml("<policies />")).await;
    assert_eq!((bad.status, bad.code()), (400, "BadRequest"));
}

#[tokio::test]
async fn deleting_a_policy_needs_if_match_and_then_it_is_gone() {
    let e = Emu::start().await;
    let etag = e.get("/products/aoai/policies/policy").await.etag();
    assert_eq!(e.call(reqwest::Method::DELETE, &e.svc("/products/aoai/policies/policy"), None, &[]).await.status, 400);
    assert_eq!(e.delete("/products/aoai/policies/policy", &etag).await.status, 200);
    assert_eq!(e.get("/products/aoai/policies/policy").await.status, 404);
    assert_eq!(e.delete("/products/aoai/policies/policy", "*").await.status, 204);
}

#[tokio::test]
async fn link_formats_are_refused_explicitly() {
    let e = Emu::start().await;
    let r = e
        .put("/policies/policy", json!({"properties": {"format": "rawxml-link", "value": "https://example.com/p.xml"}}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.detail_messages()[0].contains("not supported by the emulator"));
}
