//! An Event Grid namespace topic with pull delivery, as callvault's `eventgrid_pull` mode
//! talks to it (api-version 2024-06-01): `POST /topics/{t}:publish`, and on
//! `/topics/{t}/eventsubscriptions/{s}` the actions `:receive` (with `maxEvents` and
//! `maxWaitTime`), `:acknowledge`, `:release` (with `releaseDelayInSeconds`), `:reject` and
//! `:renewLock`, each settling a list of lock tokens and answering which failed. Requests
//! carry `Authorization: SharedAccessKey <key>`. Events are locked for the lock duration
//! when received; a lock that lapses makes the event available again, until its delivery
//! count reaches the maximum and it is dead-lettered, as a rejected event is at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::state::{Shared, lock};

/// Lock duration and delivery count of the subscriptions, as Azure's defaults.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceOptions {
    pub lock_duration: Duration,
    pub max_delivery_count: u32,
}

impl Default for NamespaceOptions {
    fn default() -> Self {
        Self {
            lock_duration: Duration::from_secs(60),
            max_delivery_count: 10,
        }
    }
}

/// An event the subscription gave up on, with why.
#[derive(Debug, Clone)]
pub struct DeadLettered {
    pub event: Value,
    pub reason: String,
    pub delivery_count: u32,
}

/// What happened on a subscription, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionCounts {
    /// Events not yet acknowledged, rejected or dead-lettered.
    pub outstanding: usize,
    pub received: u64,
    pub acknowledged: u64,
    pub released: u64,
    pub rejected: u64,
    pub renewed: u64,
    /// Lock tokens answered as failed by a settle action.
    pub failed_tokens: u64,
}

struct Pending {
    event: Value,
    delivery_count: u32,
    /// The lock token and when the lock lapses, while an event is received and not settled.
    lock: Option<(String, Instant)>,
    /// A released event is not offered again before this.
    available_at: Instant,
}

#[derive(Default)]
struct Subscription {
    events: Vec<Pending>,
    dead_letters: Vec<DeadLettered>,
    counts: SubscriptionCounts,
    /// Acknowledgements to answer as failed (a fault), counted down per token.
    failing_acknowledgements: u32,
}

/// Every namespace topic's subscriptions, keyed by (topic, subscription).
#[derive(Default)]
pub(crate) struct Namespace {
    subscriptions: Mutex<HashMap<(String, String), Subscription>>,
    /// Topics' subscription names, so a publish reaches every one.
    topics: Mutex<HashMap<String, Vec<String>>>,
    options: Mutex<NamespaceOptions>,
    published: Notify,
}

impl Namespace {
    pub(crate) fn create(&self, topic: &str, subscription: &str, options: NamespaceOptions) {
        *lock(&self.options) = options;
        let mut topics = lock(&self.topics);
        let names = topics.entry(topic.to_owned()).or_default();
        if !names.iter().any(|name| name == subscription) {
            names.push(subscription.to_owned());
        }
        lock(&self.subscriptions)
            .entry((topic.to_owned(), subscription.to_owned()))
            .or_default();
    }

    /// Adds `events` to every subscription of `topic`; false when the topic has none.
    pub(crate) fn publish(&self, topic: &str, events: Vec<Value>) -> bool {
        let names = lock(&self.topics).get(topic).cloned().unwrap_or_default();
        if names.is_empty() {
            return false;
        }
        let now = Instant::now();
        let mut subscriptions = lock(&self.subscriptions);
        for name in names {
            let subscription = subscriptions.entry((topic.to_owned(), name)).or_default();
            for event in &events {
                subscription.events.push(Pending {
                    event: event.clone(),
                    delivery_count: 0,
                    lock: None,
                    available_at: now,
                });
                subscription.counts.outstanding += 1;
            }
        }
        drop(subscriptions);
        self.published.notify_waiters();
        true
    }

    pub(crate) fn counts(&self, topic: &str, subscription: &str) -> SubscriptionCounts {
        self.with(topic, subscription, |s| s.counts.clone())
            .unwrap_or_default()
    }

    pub(crate) fn dead_letters(&self, topic: &str, subscription: &str) -> Vec<DeadLettered> {
        self.with(topic, subscription, |s| s.dead_letters.clone())
            .unwrap_or_default()
    }

    pub(crate) fn fail_acknowledgements(&self, topic: &str, subscription: &str, tokens: u32) {
        self.with(topic, subscription, |s| s.failing_acknowledgements = tokens);
    }

    fn with<T>(
        &self,
        topic: &str,
        subscription: &str,
        f: impl FnOnce(&mut Subscription) -> T,
    ) -> Option<T> {
        lock(&self.subscriptions)
            .get_mut(&(topic.to_owned(), subscription.to_owned()))
            .map(f)
    }

    /// Up to `max` available events, locked; lapsed locks are expired first.
    fn take(&self, topic: &str, name: &str, max: usize) -> Option<Vec<Value>> {
        let options = *lock(&self.options);
        self.with(topic, name, |subscription| {
            subscription.expire_locks(options.max_delivery_count);
            let now = Instant::now();
            let mut taken = Vec::new();
            for pending in &mut subscription.events {
                if taken.len() == max {
                    break;
                }
                if pending.lock.is_some() || pending.available_at > now {
                    continue;
                }
                let token = uuid::Uuid::new_v4().to_string();
                pending.delivery_count += 1;
                pending.lock = Some((token.clone(), now + options.lock_duration));
                taken.push(json!({
                    "brokerProperties": {"lockToken": token, "deliveryCount": pending.delivery_count},
                    "event": pending.event,
                }));
            }
            subscription.counts.received += taken.len() as u64;
            taken
        })
    }
}

impl Subscription {
    /// Unlocks events whose lock lapsed; one delivered `max_delivery_count` times is
    /// dead-lettered instead.
    fn expire_locks(&mut self, max_delivery_count: u32) {
        let now = Instant::now();
        let mut index = 0;
        while index < self.events.len() {
            let lapsed = matches!(self.events[index].lock, Some((_, until)) if until <= now);
            if lapsed {
                self.events[index].lock = None;
                if self.events[index].delivery_count >= max_delivery_count {
                    let pending = self.events.remove(index);
                    self.dead_letter(pending, "MaxDeliveryCountExceeded");
                    continue;
                }
            }
            index += 1;
        }
    }

    fn dead_letter(&mut self, pending: Pending, reason: &str) {
        self.counts.outstanding -= 1;
        self.dead_letters.push(DeadLettered {
            event: pending.event,
            reason: reason.to_owned(),
            delivery_count: pending.delivery_count,
        });
    }

    /// The index of the event locked under `token`, while its lock holds.
    fn locked(&self, token: &str) -> Option<usize> {
        let now = Instant::now();
        self.events.iter().position(
            |pending| matches!(&pending.lock, Some((held, until)) if held == token && *until > now),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Acknowledge,
    Release,
    Reject,
    RenewLock,
}

#[derive(Deserialize)]
struct LockTokens {
    #[serde(rename = "lockTokens")]
    lock_tokens: Vec<String>,
}

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/topics/{topic_action}", web::post().to(publish))
        .route(
            "/topics/{topic}/eventsubscriptions/{subscription_action}",
            web::post().to(subscription_action),
        );
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"error": {"code": code, "message": message}}))
}

/// The namespace's key is the emulator's access key, as `SharedAccessKey <base64>`; the
/// refusal to answer when it is missing or wrong.
fn refusal(request: &HttpRequest, shared: &Shared) -> Option<HttpResponse> {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(&shared.key);
    let given = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("SharedAccessKey "));
    match given {
        Some(key) if key.trim() == expected => None,
        Some(_) => Some(error(
            401,
            "Unauthorized",
            "the SharedAccessKey is not valid",
        )),
        None => Some(error(
            401,
            "Unauthorized",
            "no SharedAccessKey authorization",
        )),
    }
}

fn query(request: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn publish(
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    if let Some(refused) = refusal(&request, &shared) {
        return refused;
    }
    let Some(topic) = path.strip_suffix(":publish") else {
        return error(404, "NotFound", "no such operation");
    };
    let events = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(events)) => events,
        Ok(event @ Value::Object(_)) => vec![event],
        _ => return error(400, "BadRequest", "the body is not CloudEvents JSON"),
    };
    if shared.namespace.publish(topic, events) {
        HttpResponse::Ok().json(json!({}))
    } else {
        error(404, "NotFound", "the topic has no subscription")
    }
}

async fn subscription_action(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    if let Some(refused) = refusal(&request, &shared) {
        return refused;
    }
    let (topic, subscription_action) = path.into_inner();
    let Some((name, action)) = subscription_action.rsplit_once(':') else {
        return error(404, "NotFound", "no such operation");
    };
    let action = match action {
        "receive" => return receive(&request, &shared.namespace, &topic, name).await,
        "acknowledge" => Action::Acknowledge,
        "release" => Action::Release,
        "reject" => Action::Reject,
        "renewLock" => Action::RenewLock,
        _ => return error(404, "NotFound", "no such operation"),
    };
    let Ok(tokens) = serde_json::from_slice::<LockTokens>(&body) else {
        return error(
            400,
            "BadRequest",
            "the body must be {\"lockTokens\": [...]}",
        );
    };
    let delay = query(&request, "releaseDelayInSeconds")
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(0);
    let options = *lock(&shared.namespace.options);
    let settled = shared.namespace.with(&topic, name, |subscription| {
        subscription.expire_locks(options.max_delivery_count);
        settle(
            subscription,
            action,
            &tokens.lock_tokens,
            options.lock_duration,
            Duration::from_secs(delay),
        )
    });
    match settled {
        Some(answer) => HttpResponse::Ok().json(answer),
        None => error(404, "NotFound", "no such event subscription"),
    }
}

fn settle(
    subscription: &mut Subscription,
    action: Action,
    tokens: &[String],
    lock_duration: Duration,
    delay: Duration,
) -> Value {
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    for token in tokens {
        if action == Action::Acknowledge && subscription.failing_acknowledgements > 0 {
            subscription.failing_acknowledgements -= 1;
            failed.push(json!({"lockToken": token, "error": {
                "code": "InternalServerError", "message": "the emulator was told to fail this acknowledgement"}}));
            continue;
        }
        let Some(index) = subscription.locked(token) else {
            failed.push(json!({"lockToken": token, "error": {
                "code": "TokenLost", "message": "the lock token is unknown or its lock has lapsed"}}));
            continue;
        };
        match action {
            Action::Acknowledge => {
                subscription.events.remove(index);
                subscription.counts.outstanding -= 1;
                subscription.counts.acknowledged += 1;
            }
            Action::Release => {
                let pending = &mut subscription.events[index];
                pending.lock = None;
                pending.available_at = Instant::now() + delay;
                subscription.counts.released += 1;
            }
            Action::Reject => {
                let pending = subscription.events.remove(index);
                subscription.dead_letter(pending, "Rejected");
                subscription.counts.rejected += 1;
            }
            Action::RenewLock => {
                if let Some((_, until)) = &mut subscription.events[index].lock {
                    *until = Instant::now() + lock_duration;
                }
                subscription.counts.renewed += 1;
            }
        }
        succeeded.push(json!(token));
    }
    subscription.counts.failed_tokens += failed.len() as u64;
    json!({"failedLockTokens": failed, "succeededLockTokens": succeeded})
}

/// Up to `maxEvents` (1–100, default 1) events, waiting up to `maxWaitTime` seconds (at
/// most 120, default 60) for the first.
async fn receive(
    request: &HttpRequest,
    namespace: &Namespace,
    topic: &str,
    name: &str,
) -> HttpResponse {
    let max = query(request, "maxEvents")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(1);
    let wait = query(request, "maxWaitTime")
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(60);
    if !(1..=100).contains(&max) || wait > 120 {
        return error(
            400,
            "BadRequest",
            "maxEvents is 1 to 100, maxWaitTime at most 120",
        );
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        // Registered before looking, so a publish in between is not missed.
        let published = namespace.published.notified();
        let Some(taken) = namespace.take(topic, name, max) else {
            return error(404, "NotFound", "no such event subscription");
        };
        let now = Instant::now();
        if !taken.is_empty() || now >= deadline {
            return HttpResponse::Ok().json(json!({"value": taken}));
        }
        // A lapsing lock or a release delay also makes events available: look again soon.
        let nap = (deadline - now).min(Duration::from_millis(100));
        let _ = tokio::time::timeout(nap, published).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(lock_ms: u64, max_delivery_count: u32) -> Namespace {
        let namespace = Namespace::default();
        let options = NamespaceOptions {
            lock_duration: Duration::from_millis(lock_ms),
            max_delivery_count,
        };
        namespace.create("t", "s", options);
        namespace
    }

    #[test]
    fn a_locked_event_is_offered_to_nobody_else_until_its_lock_lapses() {
        let namespace = namespace(60_000, 10);
        assert!(namespace.publish("t", vec![json!({"id": "1"})]));
        assert_eq!(namespace.take("t", "s", 10).unwrap().len(), 1);
        assert!(namespace.take("t", "s", 10).unwrap().is_empty());
        assert!(
            !namespace.publish("other", vec![json!({})]),
            "no such topic"
        );
    }

    #[test]
    fn an_event_whose_locks_lapse_max_delivery_count_times_is_dead_lettered() {
        let namespace = namespace(5, 2);
        namespace.publish("t", vec![json!({"id": "1"})]);
        for delivery in 1..=2 {
            let taken = namespace.take("t", "s", 1).unwrap();
            assert_eq!(taken[0]["brokerProperties"]["deliveryCount"], delivery);
            // Time is what lapses a lock.
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(namespace.take("t", "s", 1).unwrap().is_empty());
        let dead = namespace.dead_letters("t", "s");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "MaxDeliveryCountExceeded");
        assert_eq!(namespace.counts("t", "s").outstanding, 0);
    }

    #[test]
    fn settling_answers_each_token_and_a_lost_one_as_failed() {
        let namespace = namespace(60_000, 10);
        namespace.publish("t", vec![json!({"id": "1"}), json!({"id": "2"})]);
        let taken = namespace.take("t", "s", 2).unwrap();
        let token = taken[0]["brokerProperties"]["lockToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let answer = namespace
            .with("t", "s", |s| {
                settle(
                    s,
                    Action::Acknowledge,
                    &[token.clone(), "unknown".into()],
                    Duration::from_secs(60),
                    Duration::ZERO,
                )
            })
            .unwrap();
        assert_eq!(answer["succeededLockTokens"], json!([token]));
        assert_eq!(answer["failedLockTokens"][0]["lockToken"], "unknown");
        assert_eq!(answer["failedLockTokens"][0]["error"]["code"], "TokenLost");
        assert_eq!(namespace.counts("t", "s").outstanding, 1);
    }
}
