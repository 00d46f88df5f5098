//! A small JSON service: axum with the pool as shared state, and a graceful shutdown that
//! lets requests in flight finish before `pool.close()`.
//!
//! ```text
//! cargo run -p pool-core --example axum_service                 # serves 127.0.0.1:3000 until Ctrl-C
//! cargo run -p pool-core --example axum_service -- --self-test  # serves, calls itself, shuts down
//! ```
//!
//! Try it: `curl -d '{"title":"write docs"}' -H 'content-type: application/json'
//! localhost:3000/todos`, then `curl localhost:3000/todos` and `curl localhost:3000/health`.

mod common;

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pool_core::{PsqlPool, Row};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

#[derive(Serialize)]
struct Todo {
    id: i32,
    title: String,
    done: bool,
}

impl Todo {
    fn from_row(row: &Row) -> Result<Todo, AppError> {
        Ok(Todo {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            done: row.try_get("done")?,
        })
    }
}

#[derive(Deserialize)]
struct NewTodo {
    title: String,
}

/// Any database error becomes a 500 with the error's text (a real service would log it and
/// say less). The pool's errors never contain the password.
struct AppError(pool_core::Error);

impl<E: Into<pool_core::Error>> From<E> for AppError {
    fn from(e: E) -> AppError {
        AppError(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = if self.0.is_timeout() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

async fn list(State(pool): State<PsqlPool>) -> Result<Json<Vec<Todo>>, AppError> {
    let res = pool
        .execute("SELECT id, title, done FROM todos ORDER BY id", &[])
        .await?;
    let todos = res
        .rows()
        .iter()
        .map(Todo::from_row)
        .collect::<Result<_, _>>()?;
    Ok(Json(todos))
}

async fn create(
    State(pool): State<PsqlPool>,
    Json(new): Json<NewTodo>,
) -> Result<(StatusCode, Json<Todo>), AppError> {
    let row = pool
        .query_one(
            "INSERT INTO todos (title) VALUES ($1) RETURNING id, title, done",
            &[&new.title],
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Todo::from_row(&row)?)))
}

async fn get_one(State(pool): State<PsqlPool>, Path(id): Path<i32>) -> Result<Response, AppError> {
    let row = pool
        .query_opt("SELECT id, title, done FROM todos WHERE id = $1", &[&id])
        .await?;
    Ok(match row {
        Some(row) => Json(Todo::from_row(&row)?).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such todo" })),
        )
            .into_response(),
    })
}

/// The pool's snapshot, e.g. for a load balancer's health check.
async fn health(State(pool): State<PsqlPool>) -> Json<serde_json::Value> {
    let s = pool.status();
    Json(json!({
        "max_size": s.max_size,
        "size": s.size,
        "idle": s.idle,
        "in_use": s.in_use,
        "waiting": s.waiting,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_test = std::env::args().any(|a| a == "--self-test");

    let pool = PsqlPool::builder()
        .dsn(common::database_url())
        .max_db_pool_size(8)
        .build()?;
    pool.startup().await?;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS todos (
             id serial PRIMARY KEY, title text NOT NULL, done bool NOT NULL DEFAULT false)",
        &[],
    )
    .await?;

    // PsqlPool is a cheap handle (an Arc inside): axum clones it into every handler.
    let app = Router::new()
        .route("/todos", get(list).post(create))
        .route("/todos/{id}", get(get_one))
        .route("/health", get(health))
        .with_state(pool.clone());

    let listener = tokio::net::TcpListener::bind(if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    })
    .await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            })
            .await
    });
    println!("listening on http://{addr}");

    if self_test {
        let result = self_test_requests(addr).await;
        let _ = stop.send(());
        result?;
    }
    // Without --self-test this waits for Ctrl-C; axum then finishes the requests in flight.
    server.await??;
    pool.close().await;
    println!("shut down; pool closed: {:?}", pool.status());
    Ok(())
}

/// Calls the service as a client would, over plain HTTP/1.1, and checks the answers.
async fn self_test_requests(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let (status, body) = http(addr, "POST", "/todos", r#"{"title":"write the docs"}"#).await?;
    println!("POST /todos -> {status} {body}");
    check(status == 201, "POST /todos should create")?;
    let created: serde_json::Value = serde_json::from_str(&body)?;
    let id = created["id"].as_i64().ok_or("no id in the answer")?;

    let (status, body) = http(addr, "POST", "/todos", r#"{"title":"ship it"}"#).await?;
    println!("POST /todos -> {status} {body}");
    check(status == 201, "POST /todos should create")?;

    let (status, body) = http(addr, "GET", "/todos", "").await?;
    println!("GET /todos -> {status} {body}");
    check(
        status == 200 && body.contains("write the docs") && body.contains("ship it"),
        "list",
    )?;

    let (status, body) = http(addr, "GET", &format!("/todos/{id}"), "").await?;
    println!("GET /todos/{id} -> {status} {body}");
    check(status == 200 && body.contains("write the docs"), "get one")?;

    let (status, body) = http(addr, "GET", "/todos/2147483647", "").await?;
    println!("GET /todos/2147483647 -> {status} {body}");
    check(status == 404, "a missing todo is 404")?;

    let (status, body) = http(addr, "GET", "/health", "").await?;
    println!("GET /health -> {status} {body}");
    check(status == 200 && body.contains("\"max_size\":8"), "health")?;
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("self-test failed: {what}").into())
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`, so the answer ends at EOF).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
