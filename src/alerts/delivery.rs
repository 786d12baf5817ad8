//! Sending notifications to webhooks and SMTP servers: blocking clients (ureq, lettre) on
//! one thread of the service's own, fed by a channel, so that a slow receiver never holds
//! an agent thread or the platform's edge thread. Deliveries go out in the order they
//! were decided; one that fails is logged (`warn`) and not retried.

use std::sync::Arc;
use std::sync::mpsc;

use lettre::Transport;

use crate::alerts::notification::Notification;
use crate::alerts::rules::{EmailSink, Sink, SmtpTls, WebhookSink};

struct Job {
    sink: String,
    target: Arc<Sink>,
    notification: Arc<Notification>,
}

/// The sender side of the delivery thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Delivery {
    jobs: mpsc::Sender<Job>,
}

impl Delivery {
    /// Starts the delivery thread.
    pub(crate) fn start() -> std::io::Result<Delivery> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("volttron-alerts".into())
            .spawn(move || {
                for job in rx {
                    if let Err(e) = send(&job.target, &job.notification) {
                        tracing::warn!(
                            "alerts: sink {:?} did not take {} ({}): {e}",
                            job.sink,
                            job.notification.id,
                            job.notification.status
                        );
                    }
                }
            })?;
        Ok(Delivery { jobs })
    }

    /// Queues `notification` for `sink` (a webhook or an e-mail; others are ignored).
    pub(crate) fn queue(&self, sink: &str, target: Arc<Sink>, notification: Arc<Notification>) {
        if matches!(&*target, Sink::Webhook(_) | Sink::Email(_)) {
            let _ = self.jobs.send(Job {
                sink: sink.to_owned(),
                target,
                notification,
            });
        }
    }
}

/// Sends one notification (blocking).
fn send(target: &Sink, n: &Notification) -> Result<(), String> {
    match target {
        Sink::Webhook(w) => post(w, n),
        Sink::Email(e) => mail(e, n),
        Sink::Log | Sink::Topic(_) => Ok(()),
    }
}

fn post(w: &WebhookSink, n: &Notification) -> Result<(), String> {
    let mut config = ureq::Agent::config_builder().timeout_global(Some(w.timeout));
    if let Some(ca) = &w.ca {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    let agent: ureq::Agent = config.build().into();
    let mut request = agent.post(&w.url);
    for (name, value) in &w.headers {
        request = request.header(name, value);
    }
    request.send_json(n).map(|_| ()).map_err(|e| e.to_string())
}

fn mail(e: &EmailSink, n: &Notification) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::SmtpTransport;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
    let tls = match e.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls | SmtpTls::Tls => {
            let mut params = TlsParameters::builder(e.host.clone());
            if let Some(ca) = &e.ca {
                let pem = std::fs::read(ca).map_err(|err| format!("{}: {err}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|err| format!("{}: {err}", ca.display()))?;
                params = params
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|err| err.to_string())?;
            match e.tls {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            }
        }
    };
    let mut builder = SmtpTransport::builder_dangerous(&e.host)
        .port(e.port)
        .tls(tls)
        .timeout(Some(e.timeout));
    if let Some((user, password)) = &e.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let mut message = lettre::Message::builder()
        .from(e.from.clone())
        .subject(n.summary())
        .header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        message = message.to(to.clone());
    }
    let message = message.body(n.text()).map_err(|e| e.to_string())?;
    builder
        .build()
        .send(&message)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
