//! `state_file`: state survives restarts; a corrupt file is refused and left alone.

mod common;

use aigw_emulator::{Emulator, Options};
use common::*;
use serde_json::json;

#[tokio::test]
async fn changes_survive_a_restart_with_the_same_etags_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let (etag, keys) = {
        let e = Emu::with(Options::new(TOKEN).with_state_file(&file)).await;
        assert!(file.exists(), "the seed is written at start");
        let r = e.patch("/subscriptions/growth", json!({"properties": {"state": "suspended"}}), "*").await;
        e.put("/products/gold", json!({"properties": {"displayName": "Gold"}})).await;
        let keys = e.post("/subscriptions/growth/listSecrets").await.body;
        e.running.shutdown().await;
        (r.etag(), keys)
    };
    let e = Emu::with(Options::new(TOKEN).with_state_file(&file)).await;
    let g = e.get("/subscriptions/growth").await;
    assert_eq!(g.body["properties"]["state"], "suspended");
    assert_eq!(g.etag(), etag);
    assert_eq!(e.get("/products/gold").await.status, 200);
    assert_eq!(e.post("/subscriptions/growth/listSecrets").await.body, keys);
    // ETags keep moving forward after a restart.
    let w = e.put("/products/silver", json!({"properties": {"displayName": "Silver"}})).await;
    assert_ne!(w.etag(), etag);
    // Reset also persists.
    e.admin(reqwest::Method::POST, "/_emulator/reset", None).await;
    e.running.shutdown().await;
    let e = Emu::with(Options::new(TOKEN).with_state_file(&file)).await;
    assert_eq!(e.get("/products/gold").await.status, 404);
    assert_eq!(e.get("/subscriptions/growth").await.body["properties"]["state"], "active");
    // The seed is saved with the state: reset after a restart restores the first run's keys.
    assert_eq!(e.post("/subscriptions/growth/listSecrets").await.body, keys);
}

#[test]
fn a_corrupt_state_file_is_refused_with_a_clear_message_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, b"{\"format\":\"aigw-emulator-state\",\"version\":1,\"state\":{trunc").unwrap();
    let err = Emulator::new(Options::new(TOKEN).with_state_file(&file)).err().expect("must refuse");
    let msg = err.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("invalid JSON") && msg.contains("refusing to start"), "{msg}");
    assert_eq!(std::fs::read(&file).unwrap(), b"{\"format\":\"aigw-emulator-state\",\"version\":1,\"state\":{trunc");

    std::fs::write(&file, b"{\"format\":\"something-else\",\"version\":1,\"state\":{\"etag_seq\":0,\"resource_groups\":{},\"services\":{}}}").unwrap();
    let msg = Emulator::new(Options::new(TOKEN).with_state_file(&file)).err().unwrap().to_string();
    assert!(msg.contains("format is 'something-else'"), "{msg}");
    std::fs::write(&file, b"").unwrap();
    assert!(Emulator::new(Options::new(TOKEN).with_state_file(&file)).is_err());
}

#[tokio::test]
async fn writes_replace_the_file_atomically_leaving_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let e = Emu::with(Options::new(TOKEN).with_state_file(&file)).await;
    for i in 0..20 {
        e.put(&format!("/products/p{i}"), json!({"properties": {"displayName": format!("P{i}")}})).await;
    }
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|d| d.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["state.json"]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["format"], "aigw-emulator-state");
    assert!(
        v["state"]["services"].as_object().unwrap().values().next().unwrap()["products"]
            .as_object()
            .unwrap()
            .contains_key("p19")
    );
}

#[tokio::test]
async fn reads_and_failed_writes_do_not_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let e = Emu::with(Options::new(TOKEN).with_state_file(&file)).await;
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    e.get("/subscriptions").await;
    e.put("/products/bad", json!({"properties": {}})).await;
    e.delete("/products/none", "*").await;
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), before);
}
