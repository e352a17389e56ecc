"""The official MCP Python SDK (a real client nobody here wrote) against the real binary."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

BIN = os.environ["AIGW_BIN"]
WASM_DIR = Path(os.environ["AIGW_WASM_DIR"])

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "plugins").mkdir()
        (d / "config.toml").write_text("")
        yield d


def server_env(workdir):
    # The SDK gives stdio children an allow-listed environment; pass ours explicitly.
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "AIGW_PLUGINS_DIR": str(workdir / "plugins"),
        "AIGW_CONFIG": str(workdir / "config.toml"),
        "AIGW_CACHE_DIR": str(workdir / "cache"),
        "AIGW_LOG": "warn",
    }


def sandbox(workdir, *args):
    return StdioServerParameters(command=BIN, args=["sandbox", *args], env=server_env(workdir))


@pytest.mark.parametrize("mode, version", [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")])
async def test_both_protocol_revisions_list_and_call_the_example_tool(workdir, mode, version):
    async with Client(sandbox(workdir), mode=mode) as client:
        assert client.protocol_version == version
        if mode == "legacy":
            assert "LOCAL SANDBOX" in (client.instructions or "")
        tools = await client.list_tools()
        tool = next(t for t in tools.tools if t.name == "get_service_info")
        assert tool.annotations.read_only_hint is True
        assert tool.output_schema["required"] == ["id", "name", "location", "sku"]
        result = await client.call_tool("get_service_info", {})
        assert result.is_error is False
        assert result.structured_content["name"] == "apim-sandbox"
        assert result.structured_content["sku"] == "StandardV2"
        assert "apim-sandbox" in result.content[0].text


async def test_a_bad_argument_is_a_tool_error_naming_the_field(workdir):
    async with Client(sandbox(workdir), mode="legacy") as client:
        result = await client.call_tool("get_service_info", {"unexpected": 1})
        assert result.is_error is True
        assert result.structured_content["error"]["kind"] == "invalid-input"
        assert result.structured_content["error"]["field"] == "unexpected"


async def test_the_example_plugin_built_from_source_and_dropped_in_is_loaded_and_called(workdir):
    # host/build.rs built plugins/service-info with `cargo build --target wasm32-wasip2 --release`;
    # drop that file into the plugin directory, as the README tells a newcomer to.
    shutil.copy(WASM_DIR / "service_info.wasm", workdir / "plugins" / "service_info.wasm")
    listing = subprocess.run([BIN, "plugins", "list"], env=server_env(workdir), capture_output=True, text=True, check=True)
    assert str(workdir / "plugins" / "service_info.wasm") in listing.stdout, listing.stdout
    async with Client(sandbox(workdir), mode="legacy") as client:
        result = await client.call_tool("get_service_info", {})
        assert result.structured_content["name"] == "apim-sandbox"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_streamable_http_serves_the_same_tools(workdir):
    port = free_port()
    proc = subprocess.Popen(
        [BIN, "sandbox", "--http", f"127.0.0.1:{port}"],
        env=server_env(workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            line = proc.stderr.readline()
            if re.search(r"MCP endpoint http://", line):
                break
            assert proc.poll() is None, "the server exited"
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            result = await client.call_tool("get_service_info", {})
            assert result.structured_content["name"] == "apim-sandbox"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_plugins_check_reports_contract_imports_and_tools(workdir):
    out = subprocess.run(
        [BIN, "plugins", "check", str(WASM_DIR / "service_info.wasm")],
        env=server_env(workdir), capture_output=True, text=True, check=True,
    ).stdout
    assert "contract: aigw:plugin@0.1.0" in out
    assert "aigw:plugin/arm@0.1.0" in out
    assert "get_service_info (read)" in out
    bad = subprocess.run(
        [BIN, "plugins", "check", str(WASM_DIR / "future_contract.wasm")],
        env=server_env(workdir), capture_output=True, text=True,
    )
    assert bad.returncode != 0
    assert "aigw:plugin@0.2.0" in bad.stderr and "aigw:plugin@0.1.0" in bad.stderr


def with_testkit(workdir):
    shutil.copy(WASM_DIR / "testkit.wasm", workdir / "plugins" / "testkit.wasm")


async def policy_xml(client):
    result = await client.call_tool("arm_get", {"path": "apis/inference-api/policies/policy?format=rawxml"})
    return result.structured_content["properties"]["value"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("answer", ["accept", "decline"])
async def test_a_write_is_applied_only_when_the_user_accepts(workdir, mode, answer):
    """2025-11-25: elicitation/create during the call; 2026-07-28: the input_required round trip."""
    from mcp import types

    with_testkit(workdir)
    asked = []

    async def confirm(context, params):
        asked.append(params.message)
        if answer == "accept":
            return types.ElicitResult(action="accept", content={"apply": True})
        return types.ElicitResult(action="decline")

    async with Client(sandbox(workdir), mode=mode, elicitation_callback=confirm) as client:
        before = await policy_xml(client)
        result = await client.call_tool("annotate_policy", {"note": f"{mode}-{answer}"})
        after = await policy_xml(client)
    assert len(asked) == 1, asked
    assert "Apply this change?" in asked[0] and "PUT apis/inference-api/policies/policy" in asked[0], asked[0]
    # The server's own account of the change, computed from the live policy, comes first; the
    # plugin's words are quoted after it.
    hosts_part, plugins_words = asked[0].split("in its own words", 1)
    assert any(
        line.startswith("+") and f"<!-- {mode}-{answer} -->" in line for line in hosts_part.splitlines()
    ), asked[0]
    assert "  > Add the comment" in plugins_words, asked[0]
    if answer == "accept":
        assert result.is_error is False, result.content[0].text
        assert result.structured_content["applied"] is True
        assert after == before.replace("<inbound>", f"<inbound><!-- {mode}-{answer} -->", 1)
    else:
        assert "Nothing was written" in result.content[0].text
        assert after == before


async def test_the_quota_scenario_in_the_sandbox(workdir):
    """List the quotas, cut growth 200k -> 100k TPM with a confirmed change, see it, roll it back."""
    from mcp import types

    async def confirm(context, params):
        assert "200,000 → 100,000" in params.message, params.message
        return types.ElicitResult(action="accept", content={"apply": True})

    def tpm(listing, sid):
        row = next(r for r in listing.structured_content["subscriptions"] if r["id"] == sid)
        return row["limits"][0]["tpm"].get("value")

    async with Client(sandbox(workdir), mode="legacy", elicitation_callback=confirm) as client:
        before = await client.call_tool("list_subscriptions", {})
        assert tpm(before, "growth") == 200000 and tpm(before, "search") == 100000
        changed = await client.call_tool("update_quota", {"subscription_id": "growth", "tpm": 100000})
        assert changed.is_error is False, changed.content[0].text
        after = await client.call_tool("list_subscriptions", {})
        assert tpm(after, "growth") == 100000
        for sid in ("prod-critical", "data-science", "search", "support"):
            assert tpm(after, sid) == tpm(before, sid), sid
        journal = await client.call_tool("list_changes", {})
        change_id = journal.structured_content["changes"][0]["id"]
        undone = await client.call_tool("rollback_change", {"change_id": change_id})
        assert undone.is_error is False, undone.content[0].text
        assert tpm(await client.call_tool("list_subscriptions", {}), "growth") == 200000


async def test_one_change_is_reverted_and_a_later_one_on_the_same_policy_survives(workdir):
    """Cut growth, give search its own limit (same policy document), revert growth alone."""
    from mcp import types

    async def confirm(context, params):
        return types.ElicitResult(action="accept", content={"apply": True})

    def tpm(listing, sid):
        row = next(r for r in listing.structured_content["subscriptions"] if r["id"] == sid)
        return row["limits"][0]["tpm"].get("value")

    async with Client(sandbox(workdir), mode="2026-07-28", elicitation_callback=confirm) as client:
        growth = await client.call_tool("update_quota", {"subscription_id": "growth", "tpm": 100000})
        assert growth.is_error is False, growth.content[0].text
        search = await client.call_tool("update_quota", {"subscription_id": "search", "tpm": 120000})
        assert search.is_error is False, search.content[0].text
        undone = await client.call_tool("rollback_change", {"change_id": growth.structured_content["changeId"]})
        assert undone.is_error is False, undone.content[0].text
        listing = await client.call_tool("list_subscriptions", {})
        assert (tpm(listing, "growth"), tpm(listing, "search"), tpm(listing, "support")) == (200000, 120000, 100000)
        journal = await client.call_tool("list_changes", {})
        reverted = next(c for c in journal.structured_content["changes"] if c["id"] == growth.structured_content["changeId"])
        assert reverted["revertedBy"], reverted


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_prompts_completion_and_resources_from_the_python_sdk(workdir, mode):
    """Start a workflow from its prompt, complete ids, open a change and a policy as resources."""
    from mcp import types

    async def confirm(context, params):
        return types.ElicitResult(action="accept", content={"apply": True})

    async with Client(sandbox(workdir), mode=mode, elicitation_callback=confirm) as client:
        prompts = await client.list_prompts()
        assert {"quota_change", "failover_drill", "semantic_cache_rollout"} <= {p.name for p in prompts.prompts}
        prompt = await client.get_prompt("quota_change", {"subscription_id": "growth", "tpm": "100000"})
        assert "what_if_quota" in prompt.messages[0].content.text

        done = await client.complete(types.PromptReference(type="ref/prompt", name="quota_change"), {"name": "subscription_id", "value": "gro"})
        assert done.completion.values == ["growth"], done
        done = await client.complete(types.PromptReference(type="ref/prompt", name="failover_drill"), {"name": "api_id", "value": "inf"})
        assert done.completion.values == ["inference-api"], done

        changed = await client.call_tool("update_quota", {"subscription_id": "growth", "tpm": 100000})
        assert changed.is_error is False, changed.content[0].text
        uri = f"aigw://changes/{changed.structured_content['changeId']}"
        listed = await client.list_resources()
        assert uri in {str(r.uri) for r in listed.resources}, listed
        change = await client.read_resource(uri)
        assert '"status": "applied"' in change.contents[0].text
        policy = await client.read_resource("aigw://policies/apis/inference-api")
        assert 'tokens-per-minute="100000"' in policy.contents[0].text


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_calls_log_lines_reach_the_client_at_the_level_it_asked_for(workdir, mode):
    """2025-11-25: logging/setLevel for the session; 2026-07-28: the per-request log level."""
    shutil.copy(WASM_DIR / "hostile.wasm", workdir / "plugins" / "hostile.wasm")
    received = []

    async def on_log(params):
        received.append(params)

    options = {"log_level": "info"} if mode != "legacy" else {}
    async with Client(sandbox(workdir), mode=mode, logging_callback=on_log, **options) as client:
        if mode == "legacy":
            await client.set_logging_level("info")
        done = await client.call_tool("log_flood", {"count": 3})
        assert done.is_error is False, done.content[0].text
    lines = [p for p in received if p.logger == "hostile"]
    assert len(lines) == 3, received
    assert all(p.level == "info" and str(p.data).startswith("flood") for p in lines), lines


async def test_what_if_quota_shows_the_effect_of_a_cut_before_anything_is_enforced(workdir):
    async with Client(sandbox(workdir), mode="legacy") as client:
        cut = await client.call_tool("what_if_quota", {"subscription_id": "growth", "tpm": 100000, "days": 2})
        assert cut.is_error is False, cut.content[0].text
        assert cut.structured_content["throttled"]["minutes"] > 0, cut.structured_content
        assert "Nothing was changed" in cut.content[0].text
        roomy = await client.call_tool("what_if_quota", {"subscription_id": "growth", "tpm": 1000000, "rpm": 100000, "days": 2})
        assert roomy.structured_content["throttled"]["minutes"] == 0, roomy.structured_content
        assert cut.structured_content["observed"]["requests"] > 0
        journal = await client.call_tool("list_changes", {})
        assert journal.structured_content["changes"] == []
