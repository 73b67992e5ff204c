//! `echo` and `calculate`.
//!
//! The calculator is a small recursive-descent evaluator over `f64` rather than `evalexpr`:
//! evalexpr is a scripting language (variables, assignment, strings, integer division where
//! `7/2` is `3`) that would need restricting, while arithmetic for a model wants real-number
//! semantics and errors that point at the column that went wrong.

use async_trait::async_trait;
use nanna_model::{SchemaType, ToolDefinition};
use serde_json::Value;

use super::{bare, params, required_str, str_arg};
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::tool::{Effect, Tool, ToolOutput};

/// Returns its input: a trivial tool for checking that tool calling works.
pub(crate) struct Echo {
    def: ToolDefinition,
}

impl Echo {
    pub(crate) fn new() -> Self {
        Self {
            def: ToolDefinition::function(
                "echo",
                "Return the given text.",
                params(vec![("text", bare(SchemaType::String), true)]),
            ),
        }
    }
}

#[async_trait]
impl Tool for Echo {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value) -> String {
        format!("echo {}", str_arg(args, "text").unwrap_or(""))
    }

    async fn execute(&self, args: Value, _ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let text = required_str(&args, "echo", "text")?;
        Ok(ToolOutput::new(
            text,
            format!("echo ({} chars)", text.chars().count()),
        ))
    }
}

/// Evaluates arithmetic expressions.
pub(crate) struct Calculate {
    def: ToolDefinition,
}

impl Calculate {
    pub(crate) fn new() -> Self {
        Self {
            def: ToolDefinition::function(
                "calculate",
                "Evaluate arithmetic: + - * / % ^ ( ), sqrt abs ln log exp sin cos tan floor \
                 ceil round min max, pi e.",
                params(vec![("expression", bare(SchemaType::String), true)]),
            ),
        }
    }
}

#[async_trait]
impl Tool for Calculate {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value) -> String {
        format!(
            "calculate {}",
            shortened(str_arg(args, "expression").unwrap_or("?"))
        )
    }

    async fn execute(&self, args: Value, _ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let expression = required_str(&args, "calculate", "expression")?;
        let value = evaluate(expression).map_err(|e| {
            ToolError::Failed(format!("cannot evaluate `{}`: {e}", shortened(expression)))
        })?;
        let result = format_number(value);
        Ok(ToolOutput::new(
            result.clone(),
            format!("calculate {} = {result}", expression.trim()),
        ))
    }
}

/// At most 80 characters of an expression, for messages (the model already has it whole).
fn shortened(expression: &str) -> String {
    match expression.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &expression[..cut]),
        None => expression.to_owned(),
    }
}

/// Formats a result without float noise: up to 12 decimals, trailing zeros removed;
/// scientific notation for very large or small magnitudes.
fn format_number(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let abs = x.abs();
    if !(1e-6..1e15).contains(&abs) {
        return format!("{x:e}");
    }
    let s = format!("{x:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Longest expression accepted, in characters: arithmetic a model means to compute is far
/// shorter, and the bound keeps the tool's time and memory small whatever it is sent.
pub(crate) const MAX_EXPRESSION_CHARS: usize = 10_000;

/// Deepest nesting of parentheses, signs, powers and function calls. The parser recurses
/// once per level; without a bound, 20,000 nested parentheses (or 50,000 unary minus
/// signs, or a 50,000-long `^` chain) overflowed the stack and aborted the process.
pub(crate) const MAX_DEPTH: usize = 200;

/// Evaluates an arithmetic expression; the error says what is wrong and where.
pub(crate) fn evaluate(input: &str) -> Result<f64, String> {
    let chars = input.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        return Err(format!(
            "the expression is {chars} characters long; at most {MAX_EXPRESSION_CHARS} are \
             accepted: split the computation into smaller steps"
        ));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let value = parser.sum()?;
    if let Some(tok) = parser.tokens.get(parser.pos) {
        return Err(format!(
            "unexpected {} at column {}; expected an operator",
            tok.kind.describe(),
            tok.col
        ));
    }
    if value.is_finite() {
        Ok(value)
    } else {
        Err("the result is not a finite number (overflow)".into())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Num(f64),
    Ident(String),
    Op(char),
    Open,
    Close,
    Comma,
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Num(n) => format!("number {n}"),
            Kind::Ident(name) => format!("`{name}`"),
            Kind::Op(c) => format!("`{c}`"),
            Kind::Open => "`(`".into(),
            Kind::Close => "`)`".into(),
            Kind::Comma => "`,`".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// 1-based column of the token's first character.
    col: usize,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
                // Exponent: 1e3, 2.5E-4.
                if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                    let mut j = i + 1;
                    if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j].is_ascii_digit() {
                        i = j;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
                let text: String = chars[start..i].iter().filter(|&&c| c != '_').collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| format!("`{text}` at column {col} is not a number"))?;
                tokens.push(Token {
                    kind: Kind::Num(n),
                    col,
                });
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect::<String>().to_lowercase();
                tokens.push(Token {
                    kind: Kind::Ident(name),
                    col,
                });
                continue;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                Kind::Op('^')
            }
            '+' | '-' | '*' | '/' | '%' | '^' => Kind::Op(c),
            '×' => Kind::Op('*'),
            '÷' => Kind::Op('/'),
            '−' => Kind::Op('-'),
            '(' => Kind::Open,
            ')' => Kind::Close,
            ',' => Kind::Comma,
            other => {
                return Err(format!(
                    "unexpected character `{other}` at column {col}; use numbers, + - * / % ^, \
                     parentheses and functions"
                ));
            }
        };
        tokens.push(Token { kind, col });
        i += 1;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Current nesting, counted where every recursion passes: [`Parser::unary`].
    depth: usize,
}

const FUNCTIONS: &str = "sqrt, cbrt, abs, ln, log, log2, log10, exp, sin, cos, tan, asin, acos, \
                         atan, floor, ceil, round, trunc, min, max, pow";

impl Parser {
    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn end_col(&self) -> usize {
        self.tokens.last().map_or(1, |t| t.col + 1)
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut acc = self.product()?;
        while let Some(Kind::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let rhs = self.product()?;
            acc = if op == '+' { acc + rhs } else { acc - rhs };
        }
        Ok(acc)
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut acc = self.unary()?;
        while let Some(Kind::Op(op @ ('*' | '/' | '%'))) = self.peek().cloned() {
            let col = self.tokens[self.pos].col;
            self.pos += 1;
            let rhs = self.unary()?;
            acc = match op {
                '*' => acc * rhs,
                _ if rhs == 0.0 => {
                    let what = if op == '/' { "division" } else { "modulo" };
                    return Err(format!("{what} by zero at column {col}"));
                }
                '/' => acc / rhs,
                _ => acc % rhs,
            };
        }
        Ok(acc)
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.depth >= MAX_DEPTH {
            let col = self
                .tokens
                .get(self.pos)
                .map_or_else(|| self.end_col(), |t| t.col);
            return Err(format!(
                "the expression nests deeper than {MAX_DEPTH} levels (parentheses, signs, \
                 powers or function calls) at column {col}; simplify it or compute it in steps"
            ));
        }
        self.depth += 1;
        let value = self.unary_inner();
        self.depth -= 1;
        value
    }

    fn unary_inner(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(Kind::Op('-')) => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some(Kind::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.primary()?;
        if let Some(Kind::Op('^')) = self.peek() {
            self.pos += 1;
            // Right-associative, and the exponent may carry a sign: 2^-1, 2^3^2.
            let exponent = self.unary()?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, String> {
        let end = self.end_col();
        let Some(tok) = self.next() else {
            return Err(format!(
                "the expression ends too early at column {end}; a number is missing"
            ));
        };
        match tok.kind {
            Kind::Num(n) => Ok(n),
            Kind::Open => {
                let value = self.sum()?;
                match self.next() {
                    Some(Token {
                        kind: Kind::Close, ..
                    }) => Ok(value),
                    _ => Err(format!("missing `)` for the `(` at column {}", tok.col)),
                }
            }
            Kind::Ident(name) => {
                if self.peek() == Some(&Kind::Open) {
                    self.pos += 1;
                    let args = self.arguments(&name, tok.col)?;
                    call(&name, &args, tok.col)
                } else {
                    match name.as_str() {
                        "pi" => Ok(std::f64::consts::PI),
                        "e" => Ok(std::f64::consts::E),
                        "tau" => Ok(std::f64::consts::TAU),
                        _ => Err(format!(
                            "unknown name `{name}` at column {}; only numbers, pi, e and \
                             functions ({FUNCTIONS}) are allowed",
                            tok.col
                        )),
                    }
                }
            }
            other => Err(format!(
                "unexpected {} at column {}; expected a number, `(` or a function",
                other.describe(),
                tok.col
            )),
        }
    }

    /// Parses `a, b, ...)` after a function's `(`.
    fn arguments(&mut self, name: &str, col: usize) -> Result<Vec<f64>, String> {
        let mut args = Vec::new();
        if self.peek() == Some(&Kind::Close) {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.sum()?);
            match self.next().map(|t| t.kind) {
                Some(Kind::Comma) => {}
                Some(Kind::Close) => return Ok(args),
                _ => {
                    return Err(format!(
                        "missing `)` after the arguments of `{name}` (column {col})"
                    ));
                }
            }
        }
    }
}

fn call(name: &str, args: &[f64], col: usize) -> Result<f64, String> {
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            let plural = if n == 1 { "" } else { "s" };
            Err(format!(
                "`{name}` at column {col} takes {n} argument{plural}, got {}",
                args.len()
            ))
        }
    };
    let unary = |f: fn(f64) -> f64| -> Result<f64, String> {
        want(1)?;
        Ok(f(args[0]))
    };
    match name {
        "sqrt" => {
            want(1)?;
            if args[0] < 0.0 {
                return Err(format!(
                    "sqrt of a negative number ({})",
                    format_number(args[0])
                ));
            }
            Ok(args[0].sqrt())
        }
        "ln" | "log" | "log2" | "log10" => {
            want(1)?;
            if args[0] <= 0.0 {
                return Err(format!(
                    "{name} of a number that is not positive ({})",
                    format_number(args[0])
                ));
            }
            Ok(match name {
                "ln" => args[0].ln(),
                "log2" => args[0].log2(),
                _ => args[0].log10(),
            })
        }
        "asin" | "acos" => {
            want(1)?;
            if !(-1.0..=1.0).contains(&args[0]) {
                return Err(format!("{name} needs a value between -1 and 1"));
            }
            Ok(if name == "asin" {
                args[0].asin()
            } else {
                args[0].acos()
            })
        }
        "cbrt" => unary(f64::cbrt),
        "abs" => unary(f64::abs),
        "exp" => unary(f64::exp),
        "sin" => unary(f64::sin),
        "cos" => unary(f64::cos),
        "tan" => unary(f64::tan),
        "atan" => unary(f64::atan),
        "floor" => unary(f64::floor),
        "ceil" => unary(f64::ceil),
        "round" => unary(f64::round),
        "trunc" => unary(f64::trunc),
        "pow" => {
            want(2)?;
            Ok(args[0].powf(args[1]))
        }
        "min" | "max" => {
            if args.is_empty() {
                return Err(format!(
                    "`{name}` at column {col} needs at least one argument"
                ));
            }
            let fold = if name == "min" { f64::min } else { f64::max };
            Ok(args[1..].iter().copied().fold(args[0], fold))
        }
        _ => Err(format!(
            "unknown function `{name}` at column {col}; available: {FUNCTIONS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> String {
        evaluate(s)
            .map(format_number)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn arithmetic_follows_precedence() {
        assert_eq!(eval("1 + 2 * 3"), "7");
        assert_eq!(eval("(1 + 2) * 3"), "9");
        assert_eq!(eval("7 / 2"), "3.5");
        assert_eq!(eval("7 % 3"), "1");
        assert_eq!(eval("2 ^ 3 ^ 2"), "512");
        assert_eq!(eval("2 ** 10"), "1024");
        assert_eq!(eval("-2 ^ 2"), "-4");
        assert_eq!(eval("2 ^ -1"), "0.5");
        assert_eq!(eval("--3"), "3");
        assert_eq!(eval("0.1 + 0.2"), "0.3");
        assert_eq!(eval("1e3 + 2.5E-1"), "1000.25");
        assert_eq!(eval("1_000 * 3"), "3000");
        assert_eq!(eval("10 - 4 - 3"), "3");
        assert_eq!(eval("12 × 3 ÷ 4"), "9");
    }

    #[test]
    fn functions_and_constants() {
        assert_eq!(eval("sqrt(16)"), "4");
        assert_eq!(eval("SQRT(2) ^ 2"), "2");
        assert_eq!(eval("max(1, 5, 3) + min(4, 2)"), "7");
        assert_eq!(eval("round(pi * 100) / 100"), "3.14");
        assert_eq!(eval("ln(e)"), "1");
        assert_eq!(eval("log(1000)"), "3");
        assert_eq!(eval("pow(2, 8)"), "256");
        assert_eq!(eval("abs(-3.5)"), "3.5");
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(eval("1 / 0"), "error: division by zero at column 3");
        assert_eq!(eval("5 % (2 - 2)"), "error: modulo by zero at column 3");
        assert!(eval("(1 + 2").contains("missing `)` for the `(` at column 1"));
        assert!(eval("1 + ").contains("ends too early"));
        assert!(eval("1 + * 2").contains("unexpected `*` at column 5"));
        assert!(eval("2 3").contains("unexpected number 3 at column 3"));
        assert!(eval("foo(1)").contains("unknown function `foo`"));
        assert!(eval("x + 1").contains("unknown name `x`"));
        assert!(eval("sqrt(-1)").contains("sqrt of a negative number (-1)"));
        assert!(eval("sqrt(1, 2)").contains("takes 1 argument, got 2"));
        assert!(eval("2 & 3").contains("unexpected character `&` at column 3"));
        assert!(eval("10 ^ 400").contains("not a finite number"));
        assert_eq!(eval("   "), "error: the expression is empty");
        assert!(eval("1..2").contains("is not a number"));
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        // The inputs of issue 10 that aborted the process.
        let parens = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
        let minus = format!("{}1", "-".repeat(50_000));
        let power = vec!["1"; 50_000].join("^");
        for input in [&parens, &minus, &power] {
            let error = evaluate(input).expect_err("too deep or too long");
            assert!(
                error.contains("characters long") || error.contains("nests deeper"),
                "{error}"
            );
        }
        // Within the length limit, the depth limit answers.
        let deep = format!("{}1{}", "(".repeat(4_000), ")".repeat(4_000));
        let error = eval(&deep);
        assert!(
            error.contains("nests deeper than 200 levels") && error.contains("at column 201"),
            "{error}"
        );
        assert!(eval(&format!("{}1", "-".repeat(5_000))).contains("nests deeper"));
        assert!(eval(&vec!["1"; 3_000].join("^")).contains("nests deeper"));
        assert!(
            eval(&format!("{}1{}", "sqrt(".repeat(300), ")".repeat(300))).contains("nests deeper")
        );
        // Up to the limit it still computes.
        let ok = format!("{}2{}", "(".repeat(150), ")".repeat(150));
        assert_eq!(eval(&ok), "2");
        assert_eq!(eval(&format!("{}3", "-".repeat(150))), "3");
        // Long but flat expressions are fine up to the length limit.
        assert_eq!(eval(&vec!["1"; 4_000].join("+")), "4000");
    }
}
