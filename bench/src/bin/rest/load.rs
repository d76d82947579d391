//! The two load generators: HTTP/1.1 to the gateway, and the same transactions straight to
//! PostgreSQL (the ceiling).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::types::{ToSql, Type};

use crate::{Scenario, USER};

/// One keep-alive HTTP/1.1 connection sending requests back to back. It reuses one buffer and
/// parses only the status line and `content-length`, so that the load generator's own cost,
/// which falls on the gateway's side of the ratio, stays small (as wrk's does).
pub async fn http_worker(
    addr: std::net::SocketAddr,
    token: &str,
    scenario: Scenario,
    ids: &[String],
    seed: usize,
    duration: Duration,
) -> anyhow::Result<Vec<u32>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::new();
    let deadline = Instant::now() + duration;
    let mut i = seed;
    let mut request = Vec::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        let path = scenario.path(&ids[i % ids.len()]);
        i += 7;
        let started = Instant::now();
        request.clear();
        request.extend_from_slice(b"GET ");
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer ");
        request.extend_from_slice(token.as_bytes());
        request.extend_from_slice(b"\r\naccept-profile: public\r\n\r\n");
        stream.write_all(&request).await?;
        let mut filled = 0;
        let (head_end, length) = loop {
            let n = stream.read(&mut buf[filled..]).await?;
            anyhow::ensure!(n > 0, "the gateway closed the connection");
            filled += n;
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                break (end + 4, content_length(&buf[..end])?);
            }
            anyhow::ensure!(filled < buf.len(), "response head too large");
        };
        anyhow::ensure!(head_end + length <= buf.len(), "response too large");
        while filled < head_end + length {
            let n = stream.read(&mut buf[filled..]).await?;
            anyhow::ensure!(n > 0, "the gateway closed the connection");
            filled += n;
        }
        anyhow::ensure!(
            buf.starts_with(b"HTTP/1.1 200"),
            "request failed: {}",
            String::from_utf8_lossy(&buf[..filled])
        );
        latencies.push(started.elapsed().as_micros() as u32);
    }
    Ok(latencies)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `content-length` of a response head.
fn content_length(head: &[u8]) -> anyhow::Result<usize> {
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if line[..colon].eq_ignore_ascii_case(b"content-length") {
            return Ok(std::str::from_utf8(&line[colon + 1..])?.trim().parse()?);
        }
    }
    anyhow::bail!("response without content-length")
}

/// The same transaction straight to PostgreSQL: BEGIN, the settings, the statement, COMMIT,
/// pipelined as the gateway sends them.
pub async fn sql_worker(
    pool: &deadpool_postgres::Pool,
    claims: &str,
    headers: &str,
    scenario: Scenario,
    ids: &[String],
    seed: usize,
    duration: Duration,
) -> anyhow::Result<Vec<u32>> {
    let mut latencies = Vec::new();
    let deadline = Instant::now() + duration;
    let mut i = seed;
    while Instant::now() < deadline {
        let key = match scenario {
            Scenario::ByKey => ids[i % ids.len()].clone(),
            Scenario::List => USER.to_owned(),
        };
        i += 7;
        let started = Instant::now();
        let client = pool.get().await?;
        let setup: [&(dyn ToSql + Sync); 7] = [
            &"\"public\", \"extensions\"",
            &"authenticated",
            &claims,
            &"GET",
            &"/pipeline_jobs",
            &headers,
            &"{}",
        ];
        // Prepared and cached per connection, as the gateway does.
        let setup_stmt = client.prepare_typed_cached(SETUP, &[Type::TEXT; 7]).await?;
        let key = TextParam(key);
        let status = TextParam("succeeded".to_owned());
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key];
        if let Scenario::List = scenario {
            params.push(&status);
        }
        let sql = scenario.sql();
        let stmt = client
            .prepare_typed_cached(&sql, &vec![Type::UNKNOWN; params.len()])
            .await?;
        // Pipelined like the gateway: BEGIN, settings, statement and COMMIT in one round trip.
        let (begun, set, rows, committed) = tokio::join!(
            client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"),
            client.query(&setup_stmt, &setup),
            client.query(&stmt, &params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        set?;
        committed?;
        anyhow::ensure!(!rows?.is_empty());
        latencies.push(started.elapsed().as_micros() as u32);
    }
    Ok(latencies)
}

const SETUP: &str = "select set_config('search_path', $1, true), set_config('role', $2, true), \
     set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), \
     set_config('request.path', $5, true), set_config('request.headers', $6, true), \
     set_config('request.cookies', $7, true)";

/// A parameter in text format, typed by the server, as the gateway sends values.
#[derive(Debug)]
struct TextParam(String);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}
