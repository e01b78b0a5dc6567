//! What the web server answers (engine.md §2.8): the fake applications, the default
//! pages and the error pages of the server the persona claims, with that server's
//! header order.
//!
//! Choice of body, first match wins: `CUSTOM_BODY`; the `FAKE_APP` page; the server's
//! default page when the status is 2xx; else the server's error page for the status.
//! The status is `RESPONSE_CODE` when given, else the page's natural one (a WordPress
//! without database answers 500, a login form 200) and 403 when nothing is configured,
//! as the original does. The Apache error page's address line names the host the client
//! asked for (Apache's `UseCanonicalName Off` default) and falls back to the decky's
//! hostname, rather than the original's decky name.
use http::{HeaderName, HeaderValue, StatusCode};
use time::OffsetDateTime;

use crate::roles::decky::persona::WebFlavor;

/// A fake application (`FAKE_APP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// Nothing configured: the server's own pages.
    None,
    /// The distro's "It works" page of Apache.
    ApacheDefault,
    /// nginx's welcome page.
    NginxDefault,
    /// IIS's start page.
    IisDefault,
    /// WordPress that lost its database.
    Wordpress,
    /// phpMyAdmin's login form.
    Phpmyadmin,
}

impl Front {
    /// The front named by `FAKE_APP`; `tomcat`, `jenkins` and unknown names have no page
    /// of their own, as in the original.
    pub fn parse(name: &str) -> Front {
        match name.trim().to_ascii_lowercase().as_str() {
            "apache_default" => Front::ApacheDefault,
            "nginx_default" => Front::NginxDefault,
            "iis_default" => Front::IisDefault,
            "wordpress" => Front::Wordpress,
            "phpmyadmin" => Front::Phpmyadmin,
            _ => Front::None,
        }
    }
}

/// One response before the transport writes it.
#[derive(Debug, Clone)]
pub struct Page {
    /// Status code.
    pub status: StatusCode,
    /// Headers in the order the claimed server sends them.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Everything a page depends on besides the request.
#[derive(Debug, Clone)]
pub struct Site {
    /// The server family claimed.
    pub flavor: WebFlavor,
    /// The `Server` header.
    pub server: String,
    /// `X-Powered-By` of PHP pages, if the persona runs PHP.
    pub php: String,
    /// The fake application.
    pub front: Front,
    /// `RESPONSE_CODE`.
    pub status: Option<StatusCode>,
    /// `CUSTOM_BODY`.
    pub custom_body: Option<String>,
    /// `EXTRA_HEADERS`, added after the server's own.
    pub extra: Vec<(HeaderName, HeaderValue)>,
    /// The distro's display name, for default pages.
    pub distro: String,
    /// When the default page was "installed" (Last-Modified / ETag), from the seed.
    pub installed: OffsetDateTime,
    /// The decky hostname, when the request names none.
    pub hostname: String,
}

/// What the page needs from the request.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// The method.
    pub method: &'a str,
    /// Host the client asked for, without port.
    pub host: Option<&'a str>,
    /// The local port.
    pub port: u16,
    /// A fresh session cookie value for apps that set one.
    pub cookie: String,
    /// A credential was just submitted (login forms answer with their error).
    pub login_failed: Option<String>,
}

/// The page for one request.
pub fn page(site: &Site, ask: &Ask<'_>, now: OffsetDateTime) -> Page {
    let (natural, content_type, body, mut app_headers) = match (&site.custom_body, site.front) {
        (Some(body), _) => (
            StatusCode::OK,
            "text/html",
            body.clone().into_bytes(),
            Vec::new(),
        ),
        (None, Front::Wordpress) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html; charset=UTF-8",
            WORDPRESS_DB_ERROR.as_bytes().to_vec(),
            php_headers(site),
        ),
        (None, Front::Phpmyadmin) => {
            let mut h = php_headers(site);
            push(
                &mut h,
                "set-cookie",
                &format!(
                    "phpMyAdmin={}; path=/; HttpOnly; SameSite=Strict",
                    ask.cookie
                ),
            );
            push(
                &mut h,
                "set-cookie",
                "pma_lang=en; expires=Fri, 01 Jan 2038 00:00:00 GMT; path=/; HttpOnly; SameSite=Strict",
            );
            (
                StatusCode::OK,
                "text/html; charset=utf-8",
                phpmyadmin(&ask.cookie, ask.login_failed.as_deref()).into_bytes(),
                h,
            )
        }
        (None, front) => {
            let flavor_page = match front {
                Front::ApacheDefault => Some(WebFlavor::Apache),
                Front::NginxDefault => Some(WebFlavor::Nginx),
                Front::IisDefault => Some(WebFlavor::Iis),
                _ => None,
            };
            match (flavor_page, site.status) {
                (Some(f), _) => (
                    StatusCode::OK,
                    "text/html",
                    default_page(f, site),
                    Vec::new(),
                ),
                (None, Some(s)) if s.is_success() => {
                    (s, "text/html", default_page(site.flavor, site), Vec::new())
                }
                (None, _) => (StatusCode::FORBIDDEN, "", Vec::new(), Vec::new()),
            }
        }
    };
    let status = site.status.unwrap_or(natural);
    let (content_type, body) = if body.is_empty() {
        error_page(site, ask, status)
    } else {
        (content_type, body)
    };
    let static_page = app_headers.is_empty() && site.custom_body.is_none();
    if static_page && status.is_success() {
        app_headers.extend(static_headers(site, body.len()));
    }
    let mut headers = Vec::new();
    let date = http_date(now);
    let length = body.len().to_string();
    match site.flavor {
        WebFlavor::Apache => {
            push(&mut headers, "date", &date);
            push(&mut headers, "server", &site.server);
            headers.extend(app_headers);
            push(&mut headers, "content-length", &length);
            push(&mut headers, "content-type", content_type);
        }
        WebFlavor::Nginx => {
            push(&mut headers, "server", &site.server);
            push(&mut headers, "date", &date);
            push(&mut headers, "content-type", content_type);
            push(&mut headers, "content-length", &length);
            headers.extend(app_headers);
        }
        WebFlavor::Iis => {
            push(&mut headers, "content-type", content_type);
            headers.extend(app_headers);
            push(&mut headers, "server", &site.server);
            push(&mut headers, "x-powered-by", "ASP.NET");
            push(&mut headers, "date", &date);
            push(&mut headers, "content-length", &length);
        }
    }
    headers.extend(site.extra.iter().cloned());
    Page {
        status,
        headers,
        body,
    }
}

fn push(headers: &mut Vec<(HeaderName, HeaderValue)>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.push((HeaderName::from_static(name), v));
    }
}

fn php_headers(site: &Site) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = Vec::new();
    if !site.php.is_empty() {
        push(&mut h, "x-powered-by", &site.php);
    }
    h
}

/// Last-Modified, ETag and friends of a file the server sends from disk.
fn static_headers(site: &Site, len: usize) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = Vec::new();
    let micros = site.installed.unix_timestamp_nanos() / 1000;
    push(&mut h, "last-modified", &http_date(site.installed));
    match site.flavor {
        WebFlavor::Apache => {
            push(&mut h, "etag", &format!("\"{len:x}-{micros:x}\""));
            push(&mut h, "accept-ranges", "bytes");
            push(&mut h, "vary", "Accept-Encoding");
        }
        WebFlavor::Nginx => {
            let secs = site.installed.unix_timestamp();
            push(&mut h, "etag", &format!("\"{secs:x}-{len:x}\""));
            push(&mut h, "accept-ranges", "bytes");
        }
        WebFlavor::Iis => {
            push(&mut h, "accept-ranges", "bytes");
            push(&mut h, "etag", &format!("\"{micros:x}:0\""));
        }
    }
    h
}

/// The server's error page for `status`.
fn error_page(site: &Site, ask: &Ask<'_>, status: StatusCode) -> (&'static str, Vec<u8>) {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    match site.flavor {
        WebFlavor::Apache => {
            let text = match code {
                400 => "Your browser sent a request that this server could not understand.<br />\n".to_owned(),
                401 => "This server could not verify that you\nare authorized to access the document\nrequested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\nbrowser doesn't understand how to supply\nthe credentials required.".to_owned(),
                403 => "You don't have permission to access this resource.".to_owned(),
                404 => "The requested URL was not found on this server.".to_owned(),
                405 => format!("The requested method {} is not allowed for this URL.", ask.method),
                413 => format!("The requested resource does not allow request data with {} requests, or the amount of data provided in\nthe request exceeds the capacity limit.", ask.method),
                500 => "The server encountered an internal error or\nmisconfiguration and was unable to complete\nyour request.</p>\n<p>Please contact the server administrator at \n webmaster@localhost to inform them of the time this error occurred,\n and the actions you performed just before this error.</p>\n<p>More information about this error may be available\nin the server error log.".to_owned(),
                503 => "The server is temporarily unable to service your\nrequest due to maintenance downtime or capacity\nproblems. Please try again later.".to_owned(),
                _ => reason.to_owned(),
            };
            let host = ask.host.unwrap_or(&site.hostname);
            let body = format!(
                "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{code} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n<p>{text}</p>\n<hr>\n<address>{} Server at {host} Port {}</address>\n</body></html>\n",
                site.server, ask.port
            );
            ("text/html; charset=iso-8859-1", body.into_bytes())
        }
        WebFlavor::Nginx => {
            let body = format!(
                "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>{}</center>\r\n</body>\r\n</html>\r\n",
                site.server
            );
            ("text/html", body.into_bytes())
        }
        WebFlavor::Iis => {
            let detail = match code {
                403 => "403 - Forbidden: Access is denied.</h2>\n  <h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3>".to_owned(),
                404 => "404 - File or directory not found.</h2>\n  <h3>The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.</h3>".to_owned(),
                _ => format!("{code} - {reason}.</h2>"),
            };
            let title = detail.split("</h2>").next().unwrap_or(reason).to_owned();
            let body = format!(
                "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>\r\n<title>{title}</title>\r\n<style type=\"text/css\">\r\n<!--\r\nbody{{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, sans-serif;background:#EEEEEE;}}\r\nfieldset{{padding:0 15px 10px 15px;}} \r\nh1{{font-size:2.4em;margin:0;color:#FFF;}}\r\nh2{{font-size:1.7em;margin:0;color:#CC0000;}} \r\nh3{{font-size:1.2em;margin:10px 0 0 0;color:#000000;}} \r\n#header{{width:96%;margin:0 0 0 0;padding:6px 2% 6px 2%;font-family:\"trebuchet MS\", Verdana, sans-serif;color:#FFF;\r\nbackground-color:#555555;}}\r\n#content{{margin:0 0 0 2%;position:relative;}}\r\n.content-container{{background:#FFF;width:96%;margin-top:8px;padding:10px;position:relative;}}\r\n-->\r\n</style>\r\n</head>\r\n<body>\r\n<div id=\"header\"><h1>Server Error</h1></div>\r\n<div id=\"content\">\r\n <div class=\"content-container\"><fieldset>\r\n  <h2>{detail}\r\n </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n"
            );
            ("text/html", body.into_bytes())
        }
    }
}

/// The server's default page.
fn default_page(flavor: WebFlavor, site: &Site) -> Vec<u8> {
    match flavor {
        WebFlavor::Nginx => NGINX_WELCOME.as_bytes().to_vec(),
        WebFlavor::Iis => IIS_START.as_bytes().to_vec(),
        WebFlavor::Apache => apache_default(&site.distro).into_bytes(),
    }
}

fn apache_default(distro: &str) -> String {
    let family = distro.split_whitespace().next().unwrap_or("Debian");
    if matches!(family, "Rocky" | "CentOS" | "Fedora") {
        return format!(
            "<!doctype html>\n<html>\n  <head>\n    <meta charset='utf-8'>\n    <meta name='viewport' content='width=device-width, initial-scale=1'>\n    <title>HTTP Server Test Page powered by: {distro}</title>\n  </head>\n  <body>\n    <header>\n      <h1>HTTP Server Test Page</h1>\n    </header>\n    <div class='row'>\n      <div class='col-sm-12 col-md-6 col-md-6 '></div>\n        <p class='summary'>This page is used to test the proper operation of\n            an HTTP server after it has been installed on a {family} Linux system.\n            If you can read this page, it means that the software is working\n            correctly.</p>\n      </div>\n  </body>\n</html>\n"
        );
    }
    let (os, conf) = if family == "Ubuntu" {
        ("Ubuntu", "/etc/apache2/apache2.conf")
    } else {
        ("Debian", "/etc/apache2/apache2.conf")
    };
    format!(
        "\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n  <head>\n    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n    <title>Apache2 {os} Default Page: It works</title>\n  </head>\n  <body>\n    <div class=\"main_page\">\n      <div class=\"page_header floating_element\">\n        <span class=\"floating_element\">\n          Apache2 {os} Default Page\n        </span>\n      </div>\n      <div class=\"content_section floating_element\">\n        <div class=\"section_header section_header_red\">\n          <div id=\"about\"></div>\n          It works!\n        </div>\n        <div class=\"content_section_text\">\n          <p>\n                This is the default welcome page used to test the correct \n                operation of the Apache2 server after installation on {os} systems.\n                If you can read this page, it means that the Apache HTTP server installed at\n                this site is working properly. You should <b>replace this file</b> (located at\n                <tt>/var/www/html/index.html</tt>) before continuing to operate your HTTP server.\n          </p>\n          <p>\n                The configuration layout is documented in <tt>{conf}</tt>.\n          </p>\n        </div>\n      </div>\n    </div>\n  </body>\n</html>\n\n"
    )
}

fn phpmyadmin(token: &str, failed: Option<&str>) -> String {
    let error = failed.map_or_else(String::new, |user| {
        format!(
            "<div class=\"alert alert-danger\" role=\"alert\"><img src=\"themes/dot.gif\" title=\"\" alt=\"\" class=\"icon ic_s_error\"> Cannot log in to the MySQL server</div><div class=\"alert alert-danger\" role=\"alert\"><img src=\"themes/dot.gif\" title=\"\" alt=\"\" class=\"icon ic_s_error\"> mysqli::real_connect(): (HY000/1045): Access denied for user '{}'@'localhost' (using password: YES)</div>",
            html_escape(user)
        )
    });
    let token = &token[..token.len().min(32)];
    format!(
        "<!DOCTYPE HTML>\n<html lang=\"en\" dir=\"ltr\">\n<head>\n  <meta charset=\"utf-8\">\n  <meta name=\"referrer\" content=\"no-referrer\">\n  <meta name=\"robots\" content=\"noindex,nofollow\">\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=Edge\">\n  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  <title>phpMyAdmin</title>\n</head>\n<body id=\"loginform\">\n<div class=\"container\">\n<a href=\"./url.php?url=https%3A%2F%2Fwww.phpmyadmin.net%2F\" target=\"_blank\" rel=\"noopener noreferrer\" class=\"logo\"><img src=\"./themes/pmahomme/img/logo_right.png\" id=\"imLogo\" name=\"imLogo\" alt=\"phpMyAdmin\" border=\"0\"></a>\n<h1>Welcome to <bdo dir=\"ltr\" lang=\"en\">phpMyAdmin</bdo></h1>\n{error}\n<form method=\"post\" id=\"login_form\" action=\"index.php?route=/\" name=\"login_form\" class=\"disableAjax hide js-show\">\n  <fieldset class=\"pma-fieldset\">\n    <legend>Log in</legend>\n    <div class=\"item\"><label for=\"input_username\">Username:</label><input type=\"text\" name=\"pma_username\" id=\"input_username\" value=\"\" size=\"24\" class=\"textfield\" autocomplete=\"username\"></div>\n    <div class=\"item\"><label for=\"input_password\">Password:</label><input type=\"password\" name=\"pma_password\" id=\"input_password\" value=\"\" size=\"24\" class=\"textfield\" autocomplete=\"current-password\"></div>\n    <input type=\"hidden\" name=\"server\" value=\"1\">\n  </fieldset>\n  <fieldset class=\"pma-fieldset tblFooters\">\n    <input class=\"btn btn-primary\" value=\"Log in\" type=\"submit\" id=\"input_go\">\n    <input type=\"hidden\" name=\"route\" value=\"/\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\n  </fieldset>\n</form>\n</div>\n</body>\n</html>\n"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#039;")
        .replace('"', "&quot;")
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only date form servers send.
pub fn http_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

const WORDPRESS_DB_ERROR: &str = "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n\t<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\n\t<meta name=\"viewport\" content=\"width=device-width\">\n\t\t<meta name='robots' content='max-image-preview:large, noindex, follow' />\n\t<title>Database Error</title>\n\t<style type=\"text/css\">\n\t\thtml {\n\t\t\tbackground: #f1f1f1;\n\t\t}\n\t\tbody {\n\t\t\tbackground: #fff;\n\t\t\tborder: 1px solid #ccd0d4;\n\t\t\tcolor: #444;\n\t\t\tfont-family: -apple-system, BlinkMacSystemFont, \"Segoe UI\", Roboto, Oxygen-Sans, Ubuntu, Cantarell, \"Helvetica Neue\", sans-serif;\n\t\t\tmargin: 2em auto;\n\t\t\tpadding: 1em 2em;\n\t\t\tmax-width: 700px;\n\t\t\t-webkit-box-shadow: 0 1px 1px rgba(0, 0, 0, .04);\n\t\t\tbox-shadow: 0 1px 1px rgba(0, 0, 0, .04);\n\t\t}\n\t\th1 {\n\t\t\tborder-bottom: 1px solid #dadada;\n\t\t\tclear: both;\n\t\t\tcolor: #666;\n\t\t\tfont-size: 24px;\n\t\t\tmargin: 30px 0 0 0;\n\t\t\tpadding: 0;\n\t\t\tpadding-bottom: 7px;\n\t\t}\n\t</style>\n</head>\n<body id=\"error-page\">\n\t<div class=\"wp-die-message\"><h1>Error establishing a database connection</h1></div></body>\n</html>\n\t";

const NGINX_WELCOME: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n<style>\nhtml { color-scheme: light dark; }\nbody { width: 35em; margin: 0 auto;\nfont-family: Tahoma, Verdana, Arial, sans-serif; }\n</style>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed and\nworking. Further configuration is required.</p>\n\n<p>For online documentation and support please refer to\n<a href=\"http://nginx.org/\">nginx.org</a>.<br/>\nCommercial support is available at\n<a href=\"http://nginx.com/\">nginx.com</a>.</p>\n\n<p><em>Thank you for using nginx.</em></p>\n</body>\n</html>\n";

const IIS_START: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\" />\r\n<title>IIS Windows Server</title>\r\n<style type=\"text/css\">\r\n<!--\r\nbody {\r\n\tcolor:#000000;\r\n\tbackground-color:#0072C6;\r\n\tmargin:0;\r\n}\r\n\r\n#container {\r\n\tmargin-left:auto;\r\n\tmargin-right:auto;\r\n\ttext-align:center;\r\n\t}\r\n\r\na img {\r\n\tborder:none;\r\n}\r\n\r\n-->\r\n</style>\r\n</head>\r\n<body>\r\n<div id=\"container\">\r\n<a href=\"http://go.microsoft.com/fwlink/?linkid=66138&amp;clcid=0x409\"><img src=\"iisstart.png\" alt=\"IIS\" width=\"960\" height=\"600\" /></a>\r\n</div>\r\n</body>\r\n</html>";

#[cfg(test)]
mod tests {
    use super::*;

    fn site(flavor: WebFlavor, server: &str) -> Site {
        Site {
            flavor,
            server: server.into(),
            php: String::new(),
            front: Front::None,
            status: None,
            custom_body: None,
            extra: Vec::new(),
            distro: "Ubuntu 22.04 LTS (Jammy)".into(),
            installed: OffsetDateTime::UNIX_EPOCH,
            hostname: "SRV-WEB-12".into(),
        }
    }

    fn ask() -> Ask<'static> {
        Ask {
            method: "GET",
            host: Some("10.0.0.5"),
            port: 80,
            cookie: "c".into(),
            login_failed: None,
        }
    }

    #[test]
    fn apache_403_with_its_address_line_and_header_order() {
        let p = page(
            &site(WebFlavor::Apache, "Apache/2.4.52 (Ubuntu)"),
            &ask(),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        let body = String::from_utf8(p.body).expect("utf-8");
        assert!(
            body.contains("<address>Apache/2.4.52 (Ubuntu) Server at 10.0.0.5 Port 80</address>"),
            "{body}"
        );
        let names: Vec<_> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["date", "server", "content-length", "content-type"]);
        assert_eq!(p.headers[0].1, "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn nginx_order_and_fronts() {
        let p = page(
            &site(WebFlavor::Nginx, "nginx/1.18.0 (Ubuntu)"),
            &ask(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let names: Vec<_> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["server", "date", "content-type", "content-length"]);
        assert!(
            String::from_utf8_lossy(&p.body).contains("<hr><center>nginx/1.18.0 (Ubuntu)</center>")
        );
        let mut wp = site(WebFlavor::Apache, "Apache/2.4.52 (Ubuntu)");
        wp.front = Front::Wordpress;
        let p = page(&wp, &ask(), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
        wp.status = Some(StatusCode::OK);
        wp.front = Front::parse("tomcat");
        let p = page(&wp, &ask(), OffsetDateTime::UNIX_EPOCH);
        assert!(String::from_utf8_lossy(&p.body).contains("Apache2 Ubuntu Default Page"));
        assert!(p.headers.iter().any(|(n, _)| n == "etag"));
    }
}
