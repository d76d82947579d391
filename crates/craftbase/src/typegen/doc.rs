//! A small Wadler-style document printer with the semantics of Prettier's `printDocToString`
//! (groups that break when they do not fit in 80 columns, hard lines that break every enclosing
//! group), so that the generated file matches `supabase gen types`, which formats its output
//! with a Prettier-compatible formatter. Hard breaks are groups asked to break (an object the
//! generator wrote over several lines), which break every enclosing group too.

/// Prettier's default print width, which the upstream generator keeps.
const WIDTH: usize = 80;

#[derive(Clone, Debug)]
pub enum Doc {
    Text(String),
    Concat(Vec<Doc>),
    /// `broken` is set when the group must break: asked for, or it holds a hard line.
    Group {
        contents: Box<Doc>,
        broken: bool,
    },
    Indent(Box<Doc>),
    Align(usize, Box<Doc>),
    /// A space when flat, a newline when broken.
    Line,
    /// Nothing when flat, a newline when broken.
    SoftLine,
    IfBreak {
        broken: Box<Doc>,
        flat: Box<Doc>,
    },
}

pub fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

pub fn concat(parts: Vec<Doc>) -> Doc {
    Doc::Concat(parts)
}

pub fn indent(doc: Doc) -> Doc {
    Doc::Indent(Box::new(doc))
}

pub fn align(n: usize, doc: Doc) -> Doc {
    Doc::Align(n, Box::new(doc))
}

pub fn if_break(broken: Doc, flat: Doc) -> Doc {
    Doc::IfBreak {
        broken: Box::new(broken),
        flat: Box::new(flat),
    }
}

/// A group; like Prettier's `propagateBreaks`, it is broken when asked to be or when a group
/// inside it is.
pub fn group(contents: Doc, should_break: bool) -> Doc {
    let broken = should_break || forces_break(&contents);
    Doc::Group {
        contents: Box::new(contents),
        broken,
    }
}

fn forces_break(doc: &Doc) -> bool {
    match doc {
        Doc::Group { broken, .. } => *broken,
        Doc::Concat(parts) => parts.iter().any(forces_break),
        Doc::Indent(d) | Doc::Align(_, d) => forces_break(d),
        Doc::IfBreak { broken, flat } => forces_break(broken) || forces_break(flat),
        Doc::Text(_) | Doc::Line | Doc::SoftLine => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// Prints a document; lines never end in spaces.
pub fn print(doc: &Doc) -> String {
    let mut out = String::new();
    let mut pos = 0usize;
    let mut cmds: Vec<(usize, Mode, &Doc)> = vec![(0, Mode::Break, doc)];
    while let Some((ind, mode, doc)) = cmds.pop() {
        match doc {
            Doc::Text(s) => {
                out.push_str(s);
                pos += width(s);
            }
            Doc::Concat(parts) => {
                for part in parts.iter().rev() {
                    cmds.push((ind, mode, part));
                }
            }
            Doc::Indent(d) => cmds.push((ind + 2, mode, d)),
            Doc::Align(n, d) => cmds.push((ind + n, mode, d)),
            Doc::Group { contents, broken } => {
                let next_mode = match mode {
                    Mode::Flat if !broken => Mode::Flat,
                    _ if *broken => Mode::Break,
                    _ => {
                        let remaining = WIDTH as isize - pos as isize;
                        if fits((ind, Mode::Flat, contents), &cmds, remaining) {
                            Mode::Flat
                        } else {
                            Mode::Break
                        }
                    }
                };
                cmds.push((ind, next_mode, contents));
            }
            Doc::Line | Doc::SoftLine => {
                if mode == Mode::Flat {
                    if matches!(doc, Doc::Line) {
                        out.push(' ');
                        pos += 1;
                    }
                } else {
                    let trimmed = out.trim_end_matches([' ', '\t']).len();
                    out.truncate(trimmed);
                    out.push('\n');
                    out.extend(std::iter::repeat_n(' ', ind));
                    pos = ind;
                }
            }
            Doc::IfBreak { broken, flat } => {
                cmds.push((ind, mode, if mode == Mode::Break { broken } else { flat }));
            }
        }
    }
    out
}

/// Whether `next` printed flat fits in `remaining` columns, counting what follows it up to the
/// next line break in the rest of the document.
fn fits(next: (usize, Mode, &Doc), rest: &[(usize, Mode, &Doc)], mut remaining: isize) -> bool {
    let mut rest_idx = rest.len();
    let mut stack: Vec<(Mode, &Doc)> = vec![(next.1, next.2)];
    while remaining >= 0 {
        let Some((mode, doc)) = stack.pop() else {
            if rest_idx == 0 {
                return true;
            }
            rest_idx -= 1;
            let (_, mode, doc) = rest[rest_idx];
            stack.push((mode, doc));
            continue;
        };
        match doc {
            Doc::Text(s) => remaining -= width(s) as isize,
            Doc::Concat(parts) => {
                for part in parts.iter().rev() {
                    stack.push((mode, part));
                }
            }
            Doc::Indent(d) | Doc::Align(_, d) => stack.push((mode, d)),
            Doc::Group { contents, broken } => {
                stack.push((if *broken { Mode::Break } else { mode }, contents))
            }
            Doc::IfBreak { broken, flat } => {
                stack.push((mode, if mode == Mode::Break { broken } else { flat }))
            }
            Doc::Line | Doc::SoftLine => {
                if mode == Mode::Break {
                    return true;
                }
                if matches!(doc, Doc::Line) {
                    remaining -= 1;
                }
            }
        }
    }
    false
}

fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union(items: &[&str]) -> Doc {
        let mut parts = vec![if_break(concat(vec![Doc::Line, text("| ")]), text(""))];
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                parts.extend([Doc::Line, text("| ")]);
            }
            parts.push(text(*item));
        }
        group(indent(concat(parts)), false)
    }

    #[test]
    fn a_union_that_fits_stays_on_one_line() {
        let doc = concat(vec![text("a: "), union(&["\"x\"", "\"y\""])]);
        assert_eq!(print(&doc), "a: \"x\" | \"y\"");
    }

    #[test]
    fn a_union_too_wide_breaks_with_leading_bars() {
        let long = "\"a label long enough to push this line well past the eighty columns limit\"";
        let doc = concat(vec![text("key: "), union(&[long, "null"])]);
        assert_eq!(print(&doc), format!("key:\n  | {long}\n  | null"));
    }

    #[test]
    fn a_broken_group_breaks_the_enclosing_group() {
        let inner = group(
            concat(vec![
                text("{"),
                indent(concat(vec![Doc::Line, text("a")])),
                Doc::Line,
                text("}"),
            ]),
            true,
        );
        let doc = group(
            concat(vec![text("x: "), inner, Doc::Line, text("y")]),
            false,
        );
        assert_eq!(print(&doc), "x: {\n  a\n}\ny");
    }
}
