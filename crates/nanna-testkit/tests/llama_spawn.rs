//! `nanna_testkit::llama::LlamaServer` starts a real llama.cpp server with the flags a test
//! gives (skipped without `.ci/llama-server.sh`'s environment).

use nanna_testkit::llama::LlamaServer;

#[tokio::test]
async fn a_test_server_serves_the_window_it_was_started_with() {
    let Some(server) = LlamaServer::start(&["-c", "1024"]) else {
        return;
    };
    let props: serde_json::Value = reqwest::get(format!("{}/props", server.url()))
        .await
        .expect("GET /props")
        .json()
        .await
        .expect("/props is JSON");
    // llama.cpp reports the served window under default_generation_settings.n_ctx.
    assert_eq!(
        props["default_generation_settings"]["n_ctx"], 1024,
        "/props: {props}"
    );
}
