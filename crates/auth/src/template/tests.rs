use super::*;
use serde_json::json;

fn vars(data: &Value) -> Vars<'_> {
    Vars {
        confirmation_url: "http://h/auth/v1/verify?token=abc&type=signup",
        token: "123456",
        token_hash: "abc",
        site_url: "http://localhost:3000",
        email: "a@example.com",
        new_email: "b@example.com",
        redirect_to: "http://localhost:3000/welcome",
        sending_to: "b@example.com",
        data: Some(data),
    }
}

/// Parses and renders, panicking on either error.
fn render(t: &str, vars: &Vars) -> String {
    Template::parse(t).unwrap().render(vars).unwrap()
}

#[test]
fn substitutes_every_variable() {
    let data = json!({});
    let t = "{{ .ConfirmationURL }}|{{ .Token }}|{{ .TokenHash }}|{{ .SiteURL }}|\
             {{ .Email }}|{{ .NewEmail }}|{{ .RedirectTo }}|{{ .SendingTo }}";
    assert_eq!(
        render(t, &vars(&data)),
        "http://h/auth/v1/verify?token=abc&amp;type=signup|123456|abc|http://localhost:3000|\
         a@example.com|b@example.com|http://localhost:3000/welcome|b@example.com"
    );
}

#[test]
fn tolerates_spacing_inside_the_braces() {
    let data = json!({});
    let v = vars(&data);
    assert_eq!(render("{{.Token}}", &v), "123456");
    assert_eq!(render("{{   .Token\t}}", &v), "123456");
    assert_eq!(
        render("a{{ .Token}}b{{.Email }}c", &v),
        "a123456ba@example.comc"
    );
}

#[test]
fn unknown_fields_print_nothing_as_missing_map_keys_do() {
    let data = json!({});
    let v = vars(&data);
    assert_eq!(render("[{{ .Nope }}]", &v), "[]");
    assert_eq!(render("no placeholders", &v), "no placeholders");
    assert_eq!(render("", &v), "");
    assert_eq!(render("{ .Token } }}", &v), "{ .Token } }}");
}

#[test]
fn data_fields_are_looked_up_and_escaped() {
    let data = json!({"name": "Ada <3", "age": 36, "nested": {"city": "Paris"}});
    let v = vars(&data);
    assert_eq!(render("Hi {{ .Data.name }}", &v), "Hi Ada &lt;3");
    assert_eq!(render("{{ .Data.age }}", &v), "36");
    assert_eq!(render("[{{ .Data.missing }}]", &v), "[]");
    assert_eq!(render("{{ .Data.nested.city }}", &v), "Paris");
    let none = Vars::default();
    assert_eq!(render("[{{ .Data.name }}]", &none), "[]");
}

#[test]
fn keeps_text_around_placeholders_and_multibyte_characters() {
    let data = json!({});
    assert_eq!(
        render("Grüße, {{ .Email }} — ✓", &vars(&data)),
        "Grüße, a@example.com — ✓"
    );
}

#[test]
fn if_else_picks_a_language_from_metadata() {
    let t = r#"{{ if eq .Data.locale "fr" }}Bonjour{{ else if eq .Data.locale "de" }}Hallo{{ else }}Hello{{ end }} {{ .Email }}"#;
    let fr = json!({"locale": "fr"});
    let de = json!({"locale": "de"});
    let none = json!({});
    assert_eq!(render(t, &vars(&fr)), "Bonjour a@example.com");
    assert_eq!(render(t, &vars(&de)), "Hallo a@example.com");
    assert_eq!(render(t, &vars(&none)), "Hello a@example.com");
}

#[test]
fn truthiness_and_logic_follow_go() {
    let data = json!({"zero": 0, "empty": "", "list": [], "yes": true, "n": 3});
    let v = vars(&data);
    assert_eq!(render("{{ if .Token }}code{{ end }}", &v), "code");
    let no_token = Vars::default();
    assert_eq!(
        render("{{ if .Token }}code{{ else }}link{{ end }}", &no_token),
        "link"
    );
    for falsy in [".Data.zero", ".Data.empty", ".Data.list", ".Data.missing"] {
        let t = format!("{{{{ if {falsy} }}}}t{{{{ else }}}}f{{{{ end }}}}");
        assert_eq!(render(&t, &v), "f", "{falsy}");
    }
    assert_eq!(render("{{ if and .Data.yes .Token }}y{{ end }}", &v), "y");
    assert_eq!(
        render(
            "{{ if or .Data.zero .Data.empty }}y{{ else }}n{{ end }}",
            &v
        ),
        "n"
    );
    assert_eq!(render("{{ if not .Data.zero }}y{{ end }}", &v), "y");
    assert_eq!(
        render("{{ or .Data.missing \"fallback\" }}", &v),
        "fallback"
    );
    assert_eq!(render("{{ and .Data.yes .Data.n }}", &v), "3");
    assert_eq!(render("{{ if ne .Data.n 4 }}y{{ end }}", &v), "y");
    assert_eq!(render("{{ if eq .Data.n 1 2 3 }}y{{ end }}", &v), "y");
    assert_eq!(render("{{ if lt .Data.n 10 }}y{{ end }}", &v), "y");
    assert_eq!(render("{{ if ge (len .Token) 6 }}y{{ end }}", &v), "y");
}

#[test]
fn range_with_and_variables() {
    let data = json!({"items": ["a", "<b>"], "map": {"y": 2, "x": 1}, "none": [],
                      "user": {"name": "Ada"}});
    let v = vars(&data);
    assert_eq!(
        render("{{ range .Data.items }}[{{ . }}]{{ end }}", &v),
        "[a][&lt;b&gt;]"
    );
    assert_eq!(
        render(
            "{{ range $i, $e := .Data.items }}{{ $i }}={{ $e }};{{ end }}",
            &v
        ),
        "0=a;1=&lt;b&gt;;"
    );
    assert_eq!(
        render(
            "{{ range $k, $v := .Data.map }}{{ $k }}{{ $v }}{{ end }}",
            &v
        ),
        "x1y2"
    );
    assert_eq!(
        render("{{ range .Data.none }}x{{ else }}empty{{ end }}", &v),
        "empty"
    );
    assert_eq!(
        render("{{ range .Data.items }}{{ $.Email }}{{ end }}", &v),
        "a@example.coma@example.com"
    );
    assert_eq!(
        render(
            "{{ with .Data.user }}{{ .name }}{{ else }}anon{{ end }}",
            &v
        ),
        "Ada"
    );
    assert_eq!(
        render("{{ with .Data.missing }}x{{ else }}anon{{ end }}", &v),
        "anon"
    );
}

#[test]
fn pipelines_functions_trimming_and_comments() {
    let data = json!({"q": "a b&c", "name": "Ada"});
    let v = vars(&data);
    assert_eq!(render("{{ .Data.q | urlquery }}", &v), "a+b%26c");
    assert_eq!(
        render("{{ .Data.name | printf \"<%s>\" }}", &v),
        "&lt;Ada&gt;"
    );
    assert_eq!(render("{{ printf \"%d%%\" 5 }}", &v), "5%");
    assert_eq!(render("{{ .Data.q | html }}", &v), "a b&amp;c");
    assert_eq!(render("{{ index .Data \"name\" }}", &v), "Ada");
    assert_eq!(render("{{ print \"a\" 1 2 }}", &v), "a1 2");
    assert_eq!(render("a  {{- .Data.name -}}  \n b", &v), "aAdab");
    assert_eq!(render("a {{/* a note */}}b", &v), "a b");
    assert_eq!(render("{{ \"}}\" }}", &v), "}}");
    assert_eq!(render("{{ `raw \\n` }}", &v), "raw \\n");
}

#[test]
fn broken_templates_are_refused_with_their_line() {
    for (t, line) in [
        ("{{ if .Token }}no end", 1),
        ("a\nb\n{{ end }}", 3),
        ("{{ .Token ", 1),
        ("x\n{{ nosuchfunc .Token }}", 2),
        ("{{ else }}", 1),
        ("{{ \"unterminated }}", 1),
        ("{{ .Token .Email }}", 1),
        ("{{ range $a, $b, $c := .Data }}{{ end }}", 1),
        ("{{ template \"x\" }}", 1),
        ("{{ }}", 1),
        ("{{ (eq 1 1 }}", 1),
    ] {
        let e = Template::parse(t).expect_err(t);
        assert_eq!(e.line, line, "{t}: {e}");
    }
}

#[test]
fn render_errors_are_reported_not_panicked() {
    let data = json!({"s": "x", "n": 1});
    let v = vars(&data);
    for t in [
        "{{ .Data.missing.deeper }}",
        "{{ .Data.s.field }}",
        "{{ lt .Data.s 1 }}",
        "{{ range .Data.n }}{{ end }}",
        "{{ not 1 2 }}",
        "{{ $nope }}",
        "{{ index .Data.s 1 }}",
    ] {
        assert!(Template::parse(t).unwrap().render(&v).is_err(), "{t}");
    }
}

#[test]
fn subjects_render_and_fall_back_to_their_text() {
    let data = json!({"locale": "fr"});
    let v = vars(&data);
    assert_eq!(subject("Confirm Your Signup", &v), "Confirm Your Signup");
    assert_eq!(
        subject(
            r#"{{ if eq .Data.locale "fr" }}Confirmez{{ else }}Confirm{{ end }}"#,
            &v
        ),
        "Confirmez"
    );
    assert_eq!(subject("{{ if }}", &v), "{{ if }}");
    assert_eq!(subject("{{ .Data.locale.x }}", &v), "{{ .Data.locale.x }}");
}
#[tokio::test]
async fn reads_local_paths_and_file_urls_and_falls_back_when_missing() {
    let dir = std::env::temp_dir().join(format!("craftbase-tpl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("confirm.html");
    std::fs::write(&file, "<p>{{ .Token }}</p>").unwrap();
    let http = reqwest::Client::new();
    assert_eq!(
        read(file.to_str().unwrap(), &http).await.as_deref(),
        Some("<p>{{ .Token }}</p>")
    );
    let as_url = url::Url::from_file_path(&file).unwrap().to_string();
    assert!(as_url.starts_with("file://"));
    assert_eq!(
        read(&as_url, &http).await.as_deref(),
        Some("<p>{{ .Token }}</p>")
    );
    assert_eq!(
        read(dir.join("missing.html").to_str().unwrap(), &http).await,
        None
    );
    std::fs::write(&file, "{{ if .Token }}unclosed").unwrap();
    assert!(load(file.to_str().unwrap(), &http).await.is_none());
    // Nothing listens on port 9 of the loopback: the fetch fails and the text falls back.
    assert_eq!(read("http://127.0.0.1:9/t.html", &http).await, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn fetches_http_urls_and_falls_back_on_an_error_status() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (status, body) = if request.starts_with("GET /ok.html ") {
                ("200 OK", "<b>{{ .Email }}</b>")
            } else {
                ("404 Not Found", "nope")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        read(&format!("{base}/ok.html"), &http).await.as_deref(),
        Some("<b>{{ .Email }}</b>")
    );
    assert_eq!(read(&format!("{base}/missing.html"), &http).await, None);
}

#[tokio::test]
async fn unset_templates_answer_none_and_set_ones_are_read_once() {
    let dir = std::env::temp_dir().join(format!("craftbase-tpl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("invite.html");
    std::fs::write(&file, "first").unwrap();
    let mut settings = Settings::from_flags(std::iter::empty()).unwrap();
    settings.template_invite = Some(file.to_str().unwrap().to_owned());
    settings.template_recovery = Some("  ".into());
    let templates = Templates::new(&settings);
    let http = reqwest::Client::new();
    assert!(templates.any());
    let text = |t: Option<&Template>| t.map(|t| t.render(&Vars::default()).unwrap());
    assert_eq!(
        text(templates.get(Which::Invite, &http).await).as_deref(),
        Some("first")
    );
    std::fs::write(&file, "second").unwrap();
    assert_eq!(
        text(templates.get(Which::Invite, &http).await).as_deref(),
        Some("first")
    );
    assert!(templates.get(Which::Recovery, &http).await.is_none());
    assert!(templates.get(Which::Confirmation, &http).await.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
