//! One log line per HTTP request: method, route pattern, status and latency, on target
//! `callvault::http` at info.
//!
//! The route is the pattern the request matched (`/admin/jobs/{id}`), never the raw path or
//! query: Event Grid sends the webhook secret as `?code=`, and the line names no header, so
//! no token or Authorization value reaches the logs either.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::future::LocalBoxFuture;

/// Written in the place of a route for requests no route matched.
const UNMATCHED: &str = "<unmatched>";

/// The middleware, for `App::wrap`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLog;

impl<S, B> Transform<S, ServiceRequest> for RequestLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestLogService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestLogService {
            service: Rc::new(service),
        }))
    }
}

pub struct RequestLogService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for RequestLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        // Matched against the app's routes now: the pattern is known before routing runs.
        let route = request.match_pattern();
        let service = self.service.clone();
        Box::pin(async move {
            let result = service.call(request).await;
            let status = match &result {
                Ok(response) => response.status(),
                Err(err) => err.as_response_error().status_code(),
            };
            // Until the response head is ready; a streamed body may take longer.
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::info!(
                target: "callvault::http",
                method = %method,
                route = route.as_deref().unwrap_or(UNMATCHED),
                status = status.as_u16(),
                latency_ms,
                "request"
            );
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    /// Everything the subscriber writes, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The log lines `requests` leave, each sent to an app with the middleware.
    async fn log_of(requests: Vec<test::TestRequest>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(RequestLog)
                .route("/api/events", web::post().to(HttpResponse::Ok))
                .route(
                    "/admin/jobs/{id}",
                    web::get().to(HttpResponse::Unauthorized),
                ),
        )
        .await;
        for request in requests {
            test::call_service(&app, request.to_request()).await;
        }
        captured.text()
    }

    #[actix_web::test]
    async fn the_line_names_the_route_and_status_but_not_the_secret() {
        let log = log_of(vec![
            test::TestRequest::post().uri("/api/events?code=SECRET"),
        ])
        .await;
        let line = log.lines().find(|line| line.contains("callvault::http"));
        let line = line.unwrap_or_else(|| panic!("no request line in {log:?}"));
        assert!(line.contains("method=POST"), "{line}");
        assert!(line.contains("route=\"/api/events\""), "{line}");
        assert!(line.contains("status=200"), "{line}");
        assert!(line.contains("latency_ms="), "{line}");
        assert!(!log.contains("SECRET"), "{log}");
        assert!(!log.contains("code="), "{log}");
    }

    #[actix_web::test]
    async fn path_parameters_tokens_and_unknown_paths_stay_out_of_the_line() {
        let log = log_of(vec![
            test::TestRequest::get()
                .uri("/admin/jobs/job-xyz")
                .insert_header(("Authorization", "Bearer TOKEN-VALUE")),
            test::TestRequest::get().uri("/no/such/path?code=SECRET"),
        ])
        .await;
        assert!(log.contains("route=\"/admin/jobs/{id}\""), "{log}");
        assert!(log.contains("status=401"), "{log}");
        assert!(log.contains(&format!("route=\"{UNMATCHED}\"")), "{log}");
        assert!(log.contains("status=404"), "{log}");
        for secret in [
            "job-xyz",
            "TOKEN-VALUE",
            "Bearer",
            "no/such",
            "SECRET",
            "code=",
        ] {
            assert!(!log.contains(secret), "{secret} in {log}");
        }
    }
}
