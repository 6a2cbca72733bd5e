//! A minimal blocking HTTP/1.1 client for the bench's own requests (readiness, the admin
//! API, the create load, touching codes once): one keep-alive connection, bodies with a
//! `Content-Length`. The redirect load itself is wrk's (`wrk`).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One keep-alive connection to `addr`, opened on the first request and again after a
/// failure or a `Connection: close`.
pub struct Http {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        Http { addr, conn: None }
    }

    /// Sends one request; returns the status and the body. Any failure drops the
    /// connection, and the next request opens a new one.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>)> {
        let result = self.exchange(method, path, bearer, body);
        if !matches!(result, Ok((_, _, true))) {
            self.conn = None;
        }
        result.map(|(status, body, _)| (status, body))
    }

    /// The status, the body, and whether the connection may be reused.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>, bool)> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.addr)
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().context("no connection")?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(key) = bearer {
            let _ = write!(request, "Authorization: Bearer {key}\r\n");
        }
        if let Some(body) = body {
            let _ = write!(
                request,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        } else {
            request.push_str("\r\n");
        }
        conn.get_mut().write_all(request.as_bytes())?;

        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        let mut keep_alive = line.starts_with("HTTP/1.1");
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                bail!("the server closed the connection in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().context("bad Content-Length")?);
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if !value.eq_ignore_ascii_case("chunked") {
                    bail!("transfer-encoding {value:?} is not supported by this client");
                }
                chunked = true;
            }
        }
        let mut answer = Vec::new();
        if chunked {
            read_chunks(conn, &mut answer)?;
            return Ok((status, answer, keep_alive));
        }
        match length {
            Some(n) => {
                answer.resize(n, 0);
                conn.read_exact(&mut answer)?;
            }
            None if status == 204 || status == 304 || (100..200).contains(&status) => {}
            None => {
                conn.read_to_end(&mut answer)?;
                keep_alive = false;
            }
        }
        Ok((status, answer, keep_alive))
    }
}

/// A chunked body (streamed answers: the export), without trailers.
fn read_chunks(conn: &mut impl BufRead, answer: &mut Vec<u8>) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            bail!("the server closed the connection in a chunked body");
        }
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size =
            usize::from_str_radix(size, 16).with_context(|| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            // The empty line after the last chunk.
            line.clear();
            conn.read_line(&mut line)?;
            return Ok(());
        }
        let start = answer.len();
        answer.resize(start + size, 0);
        conn.read_exact(&mut answer[start..])?;
        line.clear();
        conn.read_line(&mut line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that reads one request per canned answer on each connection it accepts.
    fn serve(
        answers: Vec<Vec<&'static str>>,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for connection in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                for answer in connection {
                    let mut head = String::new();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if let Some(v) = line.strip_prefix("Content-Length: ") {
                            length = v.trim().parse().unwrap();
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    requests.push(head + &String::from_utf8(body).unwrap());
                    reader.get_mut().write_all(answer.as_bytes()).unwrap();
                }
            }
            requests
        });
        (addr, handle)
    }

    #[test]
    fn requests_on_one_connection_until_it_closes() {
        let (addr, server) = serve(vec![
            vec![
                "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\ncontent-length: 0\r\n\r\n",
                "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy",
            ],
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        ]);
        let mut http = Http::new(addr);
        let (status, body) = http
            .request("POST", "/api/v1/links", Some("k"), Some(r#"{"a":1}"#))
            .unwrap();
        assert_eq!((status, body.as_slice()), (201, b"{}".as_slice()));
        assert_eq!(
            http.request("GET", "/abc", None, None).unwrap(),
            (302, vec![])
        );
        assert_eq!(
            http.request("GET", "/busy", None, None).unwrap(),
            (503, b"busy".to_vec())
        );
        // The server closed that connection: the next request opens another.
        assert_eq!(
            http.request("GET", "/readyz", None, None).unwrap(),
            (200, b"ok".to_vec())
        );
        let requests = server.join().unwrap();
        assert!(requests[0].starts_with("POST /api/v1/links HTTP/1.1\r\n"));
        assert!(requests[0].contains("Authorization: Bearer k\r\n"));
        assert!(requests[0].ends_with("Content-Length: 7\r\n\r\n{\"a\":1}"));
        assert!(requests[1].starts_with("GET /abc HTTP/1.1\r\n"));
        assert!(!requests[1].contains("Authorization"));
    }

    #[test]
    fn chunked_answers_are_read_whole_and_the_connection_kept() {
        let (addr, server) = serve(vec![vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ncode,\r\nb;ext=1\r\nurl\nabc,xyz\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]]);
        let mut http = Http::new(addr);
        assert_eq!(
            http.request("GET", "/export", None, None).unwrap(),
            (200, b"code,url\nabc,xyz".to_vec())
        );
        assert_eq!(
            http.request("GET", "/next", None, None).unwrap(),
            (200, b"ok".to_vec())
        );
        assert_eq!(
            server.join().unwrap().len(),
            2,
            "one connection, two requests"
        );
    }
}
