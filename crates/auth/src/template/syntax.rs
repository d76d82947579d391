//! The Go template language as GoTrue's mail templates use it, parsed once when a template is
//! loaded so that a broken template is refused then rather than when a mail goes out: text,
//! `{{ pipeline }}` output, `if`/`else if`/`else`/`end`, `range` (with `$k, $v :=`), `with`,
//! `{{- -}}` trimming, `{{/* comments */}}`, fields (`.Data.key`), `$` variables,
//! literals, function calls, parentheses and `|` pipelines.

use thiserror::Error;

/// Why a template was refused, with the line it failed on.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("template line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Output(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        vars: Vec<String>,
        over: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        value: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Commands joined by `|`: each command's result is the last argument of the next.
pub type Pipeline = Vec<Command>;

/// A function call (a name then arguments) or a single value.
pub type Command = Vec<Arg>;

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.A.B` from the current value (`.` alone: an empty path).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone: the template's data).
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Sub(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(f64),
    Pipe,
    Open,
    Close,
    Declare,
    Comma,
}

/// A template as text and actions, before nesting.
enum Piece {
    Text(String),
    Action(Vec<Tok>, usize),
}

/// Parses a whole template.
pub fn parse(src: &str) -> Result<Vec<Node>, SyntaxError> {
    let pieces = split(src)?;
    let mut parser = Parser { pieces, at: 0 };
    let (nodes, end) = parser.block()?;
    match end {
        None => Ok(nodes),
        Some((word, line)) => Err(err(line, format!("unexpected {{{{ {word} }}}}"))),
    }
}

fn err(line: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        line,
        message: message.into(),
    }
}

/// Cuts the source into text and the tokens of each action, applying `{{-` and `-}}`.
fn split(src: &str) -> Result<Vec<Piece>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = &rest[start + 2..];
        if let Some(after) = inner.strip_prefix("- ").or(inner.strip_prefix("-\t")) {
            text = text.trim_end();
            inner = after;
        } else if inner.starts_with("-\n") || inner.starts_with("-\r") {
            text = text.trim_end();
            inner = &inner[1..];
        }
        line += rest[..start].matches('\n').count();
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        let close = find_close(inner).ok_or_else(|| err(line, "unclosed action"))?;
        let mut body = &inner[..close];
        trim_next = false;
        if let Some(b) = body.strip_suffix(" -").or(body.strip_suffix("\t-")) {
            body = b;
            trim_next = true;
        } else if body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next = true;
        }
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") || trimmed.len() < 4 {
                return Err(err(line, "unclosed comment"));
            }
        } else {
            pieces.push(Piece::Action(lex(body, line)?, line));
        }
        line += inner[..close].matches('\n').count();
        rest = &inner[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_owned()));
    }
    Ok(pieces)
}

/// Where the action's `}}` is, skipping any inside string literals.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q == b'"' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if s[i..].starts_with("}}") => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn lex(s: &str, line: usize) -> Result<Vec<Tok>, SyntaxError> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '.' | '$' => {
                let mut j = i + 1;
                let name = if c == '$' {
                    let end = word_end(j);
                    let name: String = chars[j..end].iter().collect();
                    j = end;
                    Some(name)
                } else {
                    None
                };
                let mut path = Vec::new();
                // `.` alone is the current value; `.A.B` and `$v.A` walk fields.
                let mut first = c == '.';
                while first || chars.get(j) == Some(&'.') {
                    if !first {
                        j += 1;
                    }
                    first = false;
                    let end = word_end(j);
                    if end == j {
                        if path.is_empty() && c == '.' && chars.get(j) != Some(&'.') {
                            break;
                        }
                        return Err(err(line, "bad field name"));
                    }
                    path.push(chars[j..end].iter().collect());
                    j = end;
                }
                toks.push(match name {
                    Some(name) => Tok::Var(name, path),
                    None => Tok::Field(path),
                });
                i = j;
            }
            '"' => {
                let mut out = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(line, "unterminated string")),
                        Some('"') => break,
                        Some('\\') => {
                            out.push(match chars.get(j + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some(c @ ('\\' | '"' | '\'')) => *c,
                                _ => return Err(err(line, "unsupported escape in string")),
                            });
                            j += 2;
                        }
                        Some(c) => {
                            out.push(*c);
                            j += 1;
                        }
                    }
                }
                toks.push(Tok::Str(out));
                i = j + 1;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '`')
                    .ok_or_else(|| err(line, "unterminated raw string"))?;
                toks.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.') {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| err(line, format!("bad number {text}")))?;
                toks.push(Tok::Num(n));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = word_end(i);
                toks.push(Tok::Ident(chars[i..end].iter().collect()));
                i = end;
            }
            other => return Err(err(line, format!("unexpected character {other:?}"))),
        }
    }
    Ok(toks)
}

/// The functions a template may call (Go's built-ins that make sense in a mail).
const FUNCS: &[&str] = &[
    "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "len", "index", "print", "printf",
    "println", "html", "urlquery", "js",
];

struct Parser {
    pieces: Vec<Piece>,
    at: usize,
}

/// How a nested block ended: `else` (with what follows it) or `end`.
type BlockEnd = Option<(String, usize)>;

impl Parser {
    /// Nodes up to an `else …` or `end` (returned, tokens left for the caller), or the end.
    fn block(&mut self) -> Result<(Vec<Node>, BlockEnd), SyntaxError> {
        let mut nodes = Vec::new();
        while self.at < self.pieces.len() {
            let piece = std::mem::replace(&mut self.pieces[self.at], Piece::Text(String::new()));
            self.at += 1;
            let (toks, line) = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(toks, line) => (toks, line),
            };
            let keyword = match toks.first() {
                Some(Tok::Ident(w)) => w.as_str(),
                _ => "",
            };
            match keyword {
                "end" if toks.len() == 1 => return Ok((nodes, Some(("end".into(), line)))),
                "else" => {
                    // Keep the rest (`if …`, `with …`) for the enclosing block to parse.
                    self.at -= 1;
                    self.pieces[self.at] = Piece::Action(toks[1..].to_vec(), line);
                    return Ok((nodes, Some(("else".into(), line))));
                }
                "if" | "with" => {
                    let head = pipeline(&toks[1..], line)?;
                    let (body, otherwise) = self.branches(keyword, line)?;
                    nodes.push(match keyword {
                        "if" => Node::If {
                            cond: head,
                            then: body,
                            otherwise,
                        },
                        _ => Node::With {
                            value: head,
                            body,
                            otherwise,
                        },
                    });
                }
                "range" => {
                    let (vars, rest) = declarations(&toks[1..], line)?;
                    let over = pipeline(rest, line)?;
                    let (body, otherwise) = self.branches("range", line)?;
                    nodes.push(Node::Range {
                        vars,
                        over,
                        body,
                        otherwise,
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(err(line, format!("{{{{ {keyword} }}}} is not supported")));
                }
                _ => nodes.push(Node::Output(pipeline(&toks, line)?)),
            }
        }
        Ok((nodes, None))
    }

    /// The body of an `if`/`with`/`range` and its `else` part (an `else if` nests an `if`).
    fn branches(
        &mut self,
        keyword: &str,
        line: usize,
    ) -> Result<(Vec<Node>, Vec<Node>), SyntaxError> {
        let (body, end) = self.block()?;
        match end {
            None => Err(err(
                line,
                format!("{{{{ {keyword} }}}} without {{{{ end }}}}"),
            )),
            Some((word, _)) if word == "end" => Ok((body, Vec::new())),
            Some((_, else_line)) => {
                let Piece::Action(toks, _) = &self.pieces[self.at] else {
                    return Err(err(else_line, "bad else"));
                };
                let toks = toks.clone();
                if toks.is_empty() {
                    self.at += 1;
                    let (otherwise, end) = self.block()?;
                    return match end {
                        Some((word, _)) if word == "end" => Ok((body, otherwise)),
                        _ => Err(err(else_line, "{{ else }} without {{ end }}")),
                    };
                }
                let nested = match toks.first() {
                    Some(Tok::Ident(w)) if w == "if" || w == "with" => w.clone(),
                    _ => return Err(err(else_line, "unexpected words after else")),
                };
                self.at += 1;
                let head = pipeline(&toks[1..], else_line)?;
                // `else if` shares the outer `end`: the nested block takes it.
                let (inner, otherwise) = self.branches(&nested, else_line)?;
                let node = match nested.as_str() {
                    "if" => Node::If {
                        cond: head,
                        then: inner,
                        otherwise,
                    },
                    _ => Node::With {
                        value: head,
                        body: inner,
                        otherwise,
                    },
                };
                Ok((body, vec![node]))
            }
        }
    }
}

/// `$v :=` or `$k, $v :=` at the start of a `range`.
fn declarations(toks: &[Tok], line: usize) -> Result<(Vec<String>, &[Tok]), SyntaxError> {
    let Some(at) = toks.iter().position(|t| *t == Tok::Declare) else {
        return Ok((Vec::new(), toks));
    };
    let mut vars = Vec::new();
    for (i, t) in toks[..at].iter().enumerate() {
        match (i % 2, t) {
            (0, Tok::Var(name, path)) if path.is_empty() => vars.push(name.clone()),
            (1, Tok::Comma) => {}
            _ => return Err(err(line, "bad variable declaration")),
        }
    }
    if vars.is_empty() || vars.len() > 2 {
        return Err(err(line, "range declares one or two variables"));
    }
    Ok((vars, &toks[at + 1..]))
}

fn pipeline(toks: &[Tok], line: usize) -> Result<Pipeline, SyntaxError> {
    if toks.is_empty() {
        return Err(err(line, "missing value"));
    }
    let mut commands = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if current.is_empty() {
                    return Err(err(line, "empty command in pipeline"));
                }
                commands.push(std::mem::take(&mut current));
            }
            Tok::Open => {
                let close = matching(toks, i).ok_or_else(|| err(line, "unclosed ("))?;
                current.push(Arg::Sub(pipeline(&toks[i + 1..close], line)?));
                i = close;
            }
            Tok::Close => return Err(err(line, "unexpected )")),
            Tok::Declare | Tok::Comma => {
                return Err(err(line, "variables are only declared by range"));
            }
            Tok::Field(p) => current.push(Arg::Field(p.clone())),
            Tok::Var(n, p) => current.push(Arg::Var(n.clone(), p.clone())),
            Tok::Str(s) => current.push(Arg::Str(s.clone())),
            Tok::Num(n) => current.push(Arg::Num(*n)),
            Tok::Ident(w) => current.push(match w.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                f if FUNCS.contains(&f) => Arg::Func(f.to_owned()),
                f => return Err(err(line, format!("function {f:?} not defined"))),
            }),
        }
        i += 1;
    }
    if current.is_empty() {
        return Err(err(line, "empty command in pipeline"));
    }
    commands.push(current);
    for (n, command) in commands.iter().enumerate() {
        let is_call = matches!(command.first(), Some(Arg::Func(_)));
        if !is_call && (command.len() > 1 || n > 0) {
            return Err(err(line, "only a function takes arguments"));
        }
    }
    Ok(commands)
}

fn matching(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
