//! Persona keys: the per-service settings an operator may give in `[<decky>.<service>]`
//! INI sub-sections (engine.md §2.2), with the environment variable each one becomes
//! inside the service container.
//!
//! Only the schema lives here; the values travel as strings in
//! `DeckyConfig::service_config` and the service reads them from its environment.

/// The type of a persona value, as shown by schema listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Free text.
    String,
    /// A password: always secret (see [`PersonaKey::secret`]).
    Password,
    /// A whole number.
    Int,
    /// true/1/yes/on or false/0/no/off.
    Bool,
    /// Multi-line text (`b64:` prefix for base64).
    Textarea,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// A non-empty subset of the listed values.
    MultiEnum(&'static [&'static str]),
}

impl KeyKind {
    /// The type's name as the original's schema spells it.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::String => "string",
            KeyKind::Password => "password",
            KeyKind::Int => "int",
            KeyKind::Bool => "bool",
            KeyKind::Textarea => "textarea",
            KeyKind::Enum(_) => "enum",
            KeyKind::MultiEnum(_) => "multi_enum",
        }
    }
}

/// One configurable key of a service persona.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonaKey {
    /// The key as written in the INI sub-section.
    pub key: &'static str,
    /// The container environment variable it sets, if the service reads it from there.
    pub env: Option<&'static str>,
    /// Its type.
    pub kind: KeyKind,
    /// The value used when the operator gives none, if any.
    pub default: Option<&'static str>,
    /// Whether the variable is set even when the operator gives no value (to `default`).
    pub always: bool,
    /// Whether the value is a secret (a password or a private key): masked wherever
    /// decnet prints it, e.g. `deploy --dry-run`.
    pub secret: bool,
}

const fn key(key: &'static str, env: &'static str, kind: KeyKind) -> PersonaKey {
    PersonaKey {
        key,
        env: Some(env),
        kind,
        default: None,
        always: false,
        secret: matches!(kind, KeyKind::Password),
    }
}

const fn always(
    key: &'static str,
    env: &'static str,
    kind: KeyKind,
    default: &'static str,
) -> PersonaKey {
    PersonaKey {
        key,
        env: Some(env),
        kind,
        default: Some(default),
        always: true,
        secret: matches!(kind, KeyKind::Password),
    }
}

const fn with_default(mut k: PersonaKey, default: &'static str) -> PersonaKey {
    k.default = Some(default);
    k
}

const fn no_env(key: &'static str, kind: KeyKind, default: Option<&'static str>) -> PersonaKey {
    PersonaKey {
        key,
        env: None,
        kind,
        default,
        always: false,
        secret: matches!(kind, KeyKind::Password),
    }
}

/// Marks a key that is not of the password kind as secret (a private key in a textarea).
const fn secret(mut k: PersonaKey) -> PersonaKey {
    k.secret = true;
    k
}

const FAKE_APPS: &[&str] = &["none", "wordpress", "phpmyadmin", "tomcat", "jenkins"];
const HTTP_VERSIONS: &[&str] = &["http/1.1", "http/2"];
const HTTPS_VERSIONS: &[&str] = &["http/1.1", "http/2", "http/3"];
const MTAS: &[&str] = &["postfix", "exim", "sendmail"];
const ZONE_MODES: &[&str] = &["auth", "recursive", "open"];

/// ssh: root and user credentials, optional hostname.
pub(super) const SSH: &[PersonaKey] = &[
    always("password", "SSH_ROOT_PASSWORD", KeyKind::Password, "admin"),
    always("user", "SSH_USER", KeyKind::String, "ubuntu"),
    always(
        "user_password",
        "SSH_USER_PASSWORD",
        KeyKind::Password,
        "admin",
    ),
    key("hostname", "SSH_HOSTNAME", KeyKind::String),
];

/// telnet: the same four keys as ssh.
pub(super) const TELNET: &[PersonaKey] = &[
    always(
        "password",
        "TELNET_ROOT_PASSWORD",
        KeyKind::Password,
        "admin",
    ),
    always("user", "TELNET_USER", KeyKind::String, "ubuntu"),
    always(
        "user_password",
        "TELNET_USER_PASSWORD",
        KeyKind::Password,
        "admin",
    ),
    key("hostname", "TELNET_HOSTNAME", KeyKind::String),
];

/// http: server identity and canned responses.
pub(super) const HTTP: &[PersonaKey] = &[
    key("server_header", "SERVER_HEADER", KeyKind::String),
    with_default(key("response_code", "RESPONSE_CODE", KeyKind::Int), "200"),
    key("fake_app", "FAKE_APP", KeyKind::Enum(FAKE_APPS)),
    key("extra_headers", "EXTRA_HEADERS", KeyKind::Textarea),
    key("custom_body", "CUSTOM_BODY", KeyKind::Textarea),
    with_default(
        key(
            "http_versions",
            "HTTP_VERSIONS",
            KeyKind::MultiEnum(HTTP_VERSIONS),
        ),
        "http/1.1",
    ),
];

/// https: the http keys, TLS material, and HTTP/3 as a protocol choice.
pub(super) const HTTPS: &[PersonaKey] = &[
    key("server_header", "SERVER_HEADER", KeyKind::String),
    with_default(key("response_code", "RESPONSE_CODE", KeyKind::Int), "200"),
    key("fake_app", "FAKE_APP", KeyKind::Enum(FAKE_APPS)),
    key("extra_headers", "EXTRA_HEADERS", KeyKind::Textarea),
    key("custom_body", "CUSTOM_BODY", KeyKind::Textarea),
    with_default(
        key(
            "http_versions",
            "HTTP_VERSIONS",
            KeyKind::MultiEnum(HTTPS_VERSIONS),
        ),
        "http/1.1",
    ),
    key("tls_cn", "TLS_CN", KeyKind::String),
    key("tls_cert", "TLS_CERT", KeyKind::Textarea),
    secret(key("tls_key", "TLS_KEY", KeyKind::Textarea)),
];

/// redis: version and OS strings of `INFO`.
pub(super) const REDIS: &[PersonaKey] = &[
    key("version", "REDIS_VERSION", KeyKind::String),
    key("os_string", "REDIS_OS", KeyKind::String),
];

/// mysql: the server version of the handshake.
pub(super) const MYSQL: &[PersonaKey] = &[key("version", "MYSQL_VERSION", KeyKind::String)];

/// rdp: whether to demand NLA (CredSSP).
pub(super) const RDP: &[PersonaKey] = &[with_default(
    key("nla", "RDP_ENABLE_NLA", KeyKind::Bool),
    "false",
)];

/// smtp: banner and MTA flavour.
pub(super) const SMTP: &[PersonaKey] = &[
    key("banner", "SMTP_BANNER", KeyKind::String),
    with_default(key("mta", "SMTP_MTA", KeyKind::Enum(MTAS)), "postfix"),
];

/// smtp_relay: the smtp keys plus the upstream used by the realism worker (no env).
pub(super) const SMTP_RELAY: &[PersonaKey] = &[
    key("banner", "SMTP_BANNER", KeyKind::String),
    with_default(key("mta", "SMTP_MTA", KeyKind::Enum(MTAS)), "postfix"),
    no_env("upstream_host", KeyKind::String, None),
    no_env("upstream_port", KeyKind::Int, Some("25")),
    no_env("upstream_user", KeyKind::String, None),
    no_env("upstream_pass", KeyKind::Password, None),
    no_env("upstream_sender", KeyKind::String, None),
    no_env("probe_limit", KeyKind::Int, Some("1")),
];

/// dns: zone persona and the optional real recursion budget.
pub(super) const DNS: &[PersonaKey] = &[
    with_default(
        key("zone_mode", "DNS_ZONE_MODE", KeyKind::Enum(ZONE_MODES)),
        "auth",
    ),
    key("domain", "DNS_DOMAIN", KeyKind::String),
    key("bind_version", "DNS_BIND_VERSION", KeyKind::String),
    key("nsid", "DNS_NSID", KeyKind::String),
    key("extra_records", "DNS_EXTRA_RECORDS", KeyKind::Textarea),
    with_default(
        key("real_recursive", "DNS_REAL_RECURSIVE", KeyKind::Bool),
        "false",
    ),
    with_default(
        key("upstream", "DNS_UPSTREAM", KeyKind::String),
        "8.8.8.8:53",
    ),
    with_default(
        key("forward_budget", "DNS_FORWARD_BUDGET", KeyKind::Int),
        "50",
    ),
    with_default(
        key("forward_window", "DNS_FORWARD_WINDOW", KeyKind::String),
        "1.0",
    ),
    key("state_path", "DNS_STATE_PATH", KeyKind::String),
];
