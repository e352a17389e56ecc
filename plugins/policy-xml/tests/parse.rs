//! The span parser: exact ranges, the shapes real policies use, and well-formedness errors.

use aigw_policy_xml::{Analysis, Node, PolicyDocument};

fn parse(t: &str) -> PolicyDocument {
    PolicyDocument::parse(t).unwrap_or_else(|e| panic!("{e}\n{t}"))
}

#[test]
fn spans_cover_exactly_what_they_say() {
    let t = "<policies>\n  <inbound>\n    <llm-token-limit counter-key='@(context.Subscription.Id)'\n        tokens-per-minute=\"500\"/>\n  </inbound>\n</policies>";
    let doc = parse(t);
    let root = doc.root();
    assert_eq!(root.name, "policies");
    assert_eq!(root.span.of(t), t);
    assert_eq!(root.start_tag.of(t), "<policies>");
    assert_eq!(root.end_tag.unwrap().of(t), "</policies>");
    let inbound = root.child_elements().next().unwrap();
    assert_eq!(
        inbound.content_span().of(t),
        "\n    <llm-token-limit counter-key='@(context.Subscription.Id)'\n        tokens-per-minute=\"500\"/>\n  "
    );
    let limit = inbound.child_elements().next().unwrap();
    assert!(limit.is_self_closing());
    assert_eq!(limit.start_tag, limit.span);
    assert_eq!(limit.name_span.of(t), "llm-token-limit");
    let [ck, tpm] = &limit.attributes[..] else { panic!() };
    assert_eq!(
        (ck.name_span.of(t), ck.value_span.of(t), ck.quote),
        ("counter-key", "@(context.Subscription.Id)", '\'')
    );
    assert_eq!(ck.span.of(t), "counter-key='@(context.Subscription.Id)'");
    assert_eq!((tpm.value_span.of(t), tpm.quote), ("500", '"'));
    assert_eq!(tpm.raw, "500");
    // Whitespace between elements is kept as text nodes.
    assert!(matches!(inbound.children[0], Node::Text(_)));
}

#[test]
fn comments_cdata_and_declarations_are_kept_as_ranges_and_never_interpreted() {
    let t = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- header: <llm-token-limit counter-key="x" tokens-per-minute="1" /> -->
<policies>
    <inbound>
        <!-- disabled: <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="5" /> -->
        <set-body><![CDATA[ <llm-token-limit tokens-per-minute="7"/> & < ]]></set-body>
        <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="9" />
    </inbound>
</policies>
"#;
    let doc = parse(t);
    assert!(matches!(doc.nodes()[0], Node::Other(_)));
    assert!(doc.nodes().iter().any(|n| matches!(n, Node::Comment(s) if s.of(t).contains("header"))));
    let a = Analysis::of(&doc);
    assert_eq!(a.limits.len(), 1);
    assert_eq!(a.limits[0].element.attr("tokens-per-minute").unwrap().raw, "9");
    let set_body = doc.elements().into_iter().find(|e| e.name == "set-body").unwrap();
    assert!(matches!(set_body.children[..], [Node::CData(s)] if s.of(t).starts_with("<![CDATA[")));
}

#[test]
fn entity_escapes_are_kept_raw_and_decoded_on_request() {
    let t = r#"<policies><inbound><choose><when condition="@(context.Subscription.Id == &quot;a&quot; || context.Variables.GetValueOrDefault&lt;bool&gt;(&quot;x&quot;))"><base /></when></choose></inbound></policies>"#;
    let doc = parse(t);
    let when = doc.elements().into_iter().find(|e| e.name == "when").unwrap();
    let c = when.attr("condition").unwrap();
    assert!(c.raw.contains("&quot;a&quot;"));
    assert_eq!(c.value_span.of(t), c.raw);
    assert_eq!(c.value(), r#"@(context.Subscription.Id == "a" || context.Variables.GetValueOrDefault<bool>("x"))"#);
}

#[test]
fn single_quoted_attributes_with_double_quotes_inside() {
    let t = r#"<policies><inbound><choose><when condition='@((string)context.Product?.Id == "gold")'><llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="1000" /></when></choose></inbound></policies>"#;
    let doc = parse(t);
    let when = doc.elements().into_iter().find(|e| e.name == "when").unwrap();
    let c = when.attr("condition").unwrap();
    assert_eq!((c.quote, c.raw.as_str()), ('\'', r#"@((string)context.Product?.Id == "gold")"#));
}

#[test]
fn rawxml_expressions_with_raw_quotes_angle_brackets_and_ampersands() {
    // As in Microsoft's examples and APIM "rawxml": not well-formed XML, accepted by the gateway.
    let t = r#"<policies>
    <inbound>
        <set-variable name="isMobile" value="@(context.Request.Headers.GetValueOrDefault("User-Agent","").Contains("iPad") && true)" />
        <choose>
            <when condition="@(context.Subscription.Id == "growth")">
                <llm-token-limit counter-key="@("tpm-" + context.Subscription.Id)" tokens-per-minute="200" />
            </when>
        </choose>
        <set-body>@{
            var body = context.Request.Body.As<JObject>(preserveContent: true);
            if (body["n"] != null && (int)body["n"] < 3) { return "<small>"; }
            return body.ToString();
        }</set-body>
    </inbound>
</policies>"#;
    let doc = parse(t);
    assert_eq!(doc.expressions().len(), 4);
    let a = Analysis::of(&doc);
    assert_eq!(a.limits.len(), 1);
    let when = doc.elements().into_iter().find(|e| e.name == "when").unwrap();
    assert_eq!(when.attr("condition").unwrap().raw, r#"@(context.Subscription.Id == "growth")"#);
    let set_body = doc.elements().into_iter().find(|e| e.name == "set-body").unwrap();
    assert_eq!(set_body.child_elements().count(), 0, "the <small> inside the C# string is not an element");
    assert!(a.limits[0].counter_key().unwrap().is_per_subscription());
}

#[test]
fn multi_line_expression_blocks_in_attributes() {
    let t = "<policies>\r\n\t<inbound>\r\n\t\t<set-variable name=\"tier\" value=\"@{\r\n\t\t\tvar id = context.Subscription.Id;\r\n\t\t\treturn id == &quot;a&quot; ? &quot;gold&quot; : &quot;silver&quot;;\r\n\t\t}\" />\r\n\t</inbound>\r\n</policies>\r\n";
    let doc = parse(t);
    let sv = doc.elements().into_iter().find(|e| e.name == "set-variable").unwrap();
    let v = sv.attr("value").unwrap();
    assert!(v.raw.starts_with("@{\r\n") && v.raw.ends_with('}'));
    assert_eq!(v.value_span.of(t), v.raw);
}

#[test]
fn errors_have_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("<policies>\n  <inbound>\n</policies>", 3, 1, "expected `</inbound>`"),
        ("<policies>\n  <inbound>\n  </inbound>\n", 1, 1, "never closed"),
        ("<policies>\n  <x a=\"1\" a=\"2\" />\n</policies>", 2, 12, "duplicated"),
        ("<policies>\n  <x a=\"1 < 2\" />\n</policies>", 2, 11, "`<`"),
        ("<policies>\n  <x a=\"fish & chips\" />\n</policies>", 2, 14, "`&`"),
        ("<policies>&nbsp;</policies>", 1, 11, "entity"),
        ("<policies/>\n<policies/>", 2, 1, "more than one root"),
        ("  hello <policies/>", 1, 3, "text outside"),
        ("<!-- only a comment -->", 1, 24, "no root"),
        ("<policies>\n<x a=\"1\" b='2 />\n</policies>", 2, 1, "not closed"),
    ];
    for (text, line, column, message) in cases {
        let e = PolicyDocument::parse(text).expect_err(text);
        assert_eq!((e.line, e.column), (*line, *column), "{text:?}: {e}");
        assert!(e.message.contains(message), "{text:?}: {e}");
        assert!(e.to_string().contains(&format!("line {line}, column {column}")));
    }
}

#[test]
fn non_ascii_text_and_columns() {
    let t = "<policies>\n  <!-- café ☕ -->\n  <x a=\"é\" b=\"&\" />\n</policies>";
    let e = PolicyDocument::parse(t).unwrap_err();
    assert_eq!((e.line, e.column), (3, 15));
    let ok = "<policies><!-- café ☕ --><x a=\"é\"/></policies>";
    let doc = parse(ok);
    let x = doc.elements().into_iter().find(|e| e.name == "x").unwrap();
    assert_eq!(x.attr("a").unwrap().value_span.of(ok), "é");
}
