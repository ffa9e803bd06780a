//! Reads the canonical text form written by [`super::print`] (its module documentation has
//! the grammar) back into a [`Graph`].
//!
//! Parsing is purely syntactic: references to nodes, ports and monoids are not resolved and
//! types are not checked, so a text can describe a malformed graph for the verifier to
//! reject. The only semantic checks are that nodes and monoids are numbered in order from 0
//! and that a constant has as many elements as its shape. Malformed text is a [`ParseError`]
//! with a line and column, never a panic; expressions nest at most [`MAX_DEPTH`] deep.
//! Whitespace and newlines separate tokens, and `//` starts a comment that runs to the end
//! of the line.

use flow_runtime::{num_elements, DType, Data, Tensor};

use super::ir::{
    Affine, BinOp, BuiltinMonoid, Dist, Edge, Graph, MathFn, Monoid, MonoidId, MonoidRef, Node,
    NodeId, NodeKind, Port, Read, ScalarExpr, TensorTy, UnOp, Unwrap, Wrap,
};
pub use super::lex::ParseError;
use super::lex::{lex, Tok, Token};

mod lit;

/// How deeply scalar expressions may nest before the parser gives up.
pub const MAX_DEPTH: usize = 500;

/// Parses the text form of a graph.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    p.graph()
}

/// Parses the text form of one scalar expression (as in a node body).
pub fn parse_expr(text: &str) -> Result<ScalarExpr, ParseError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    p.expect_eof()?;
    Ok(e)
}

/// A cursor over the tokens.
struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    /// The current token (the last one, `Eof`, once the end is reached).
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    /// The token `ahead` positions after the current one.
    fn peek_at(&self, ahead: usize) -> &Tok {
        let last = self.toks.len().saturating_sub(1);
        self.toks
            .get((self.pos + ahead).min(last))
            .map_or(&Tok::Eof, |t| &t.tok)
    }

    /// Consumes and returns the current token.
    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// An error at the current token.
    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    /// An error at token `pos`.
    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let (line, col) = self.toks.get(pos).map_or((1, 1), |t| (t.line, t.col));
        ParseError {
            line,
            col,
            message: message.into(),
        }
    }

    /// An "expected X, found Y" error at the current token.
    fn expected(&self, what: &str) -> ParseError {
        self.error(format!("expected {what}, found {}", self.peek()))
    }

    /// Whether the current token is punctuation `c`.
    fn at_punct(&self, c: char) -> bool {
        *self.peek() == Tok::Punct(c)
    }

    /// Whether the current token is the word `w`.
    fn at_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }

    /// Consumes punctuation `c` if it is next.
    fn eat_punct(&mut self, c: char) -> bool {
        let at = self.at_punct(c);
        if at {
            self.bump();
        }
        at
    }

    /// Consumes the word `w` if it is next.
    fn eat_word(&mut self, w: &str) -> bool {
        let at = self.at_word(w);
        if at {
            self.bump();
        }
        at
    }

    /// Consumes punctuation `c` or fails.
    fn punct(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{c}`")))
        }
    }

    /// Consumes the word `w` or fails.
    fn word(&mut self, w: &str) -> Result<(), ParseError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{w}`")))
        }
    }

    /// Fails unless all tokens are consumed.
    fn expect_eof(&self) -> Result<(), ParseError> {
        match self.peek() {
            Tok::Eof => Ok(()),
            _ => Err(self.expected("the end of the text")),
        }
    }

    /// Parses `item (',' item)*` up to (not including) punctuation `close`.
    fn list<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Parser) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut items = Vec::new();
        if self.at_punct(close) {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if !self.eat_punct(',') {
                return Ok(items);
            }
        }
    }

    /// Parses an unsigned decimal number without suffix.
    fn uint<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, ParseError> {
        let value = match self.peek() {
            Tok::Num { text, suffix } if suffix.is_empty() && is_digits(text) => {
                text.parse::<u64>().ok().and_then(|v| T::try_from(v).ok())
            }
            _ => return Err(self.expected(what)),
        };
        let v = value.ok_or_else(|| self.error(format!("{what} is out of range")))?;
        self.bump();
        Ok(v)
    }

    /// Parses a type name.
    fn dtype(&mut self) -> Result<DType, ParseError> {
        match self.peek() {
            Tok::Ident(s) => match DType::from_name(s) {
                Some(d) => {
                    self.bump();
                    Ok(d)
                }
                None => Err(self.expected("a type")),
            },
            _ => Err(self.expected("a type")),
        }
    }

    /// Parses `[N, ...]`.
    fn shape(&mut self) -> Result<Vec<usize>, ParseError> {
        self.punct('[')?;
        let dims = self.list(']', |p| p.uint("an extent"))?;
        self.punct(']')?;
        Ok(dims)
    }

    /// Parses `dtype[N, ...]`.
    fn tensor_ty(&mut self) -> Result<TensorTy, ParseError> {
        let dtype = self.dtype()?;
        Ok(TensorTy::new(dtype, self.shape()?))
    }

    /// Parses `%N.P`.
    fn port(&mut self) -> Result<Port, ParseError> {
        let Tok::NodeRef(n) = *self.peek() else {
            return Err(self.expected("a port `%N.P`"));
        };
        self.bump();
        self.punct('.')?;
        let port = self.uint("a port number")?;
        Ok(Port {
            node: NodeId(n),
            port,
        })
    }

    /// Parses the whole graph.
    fn graph(&mut self) -> Result<Graph, ParseError> {
        let mut g = Graph::new();
        while self.at_word("monoid") {
            let m = self.monoid(g.monoids.len())?;
            g.add_monoid(m);
        }
        while let Tok::NodeRef(n) = *self.peek() {
            if n as usize != g.nodes.len() {
                return Err(self.error(format!("expected node %{}, found %{n}", g.nodes.len())));
            }
            self.bump();
            let node = self.node()?;
            g.add(node);
        }
        self.word("output")?;
        if matches!(self.peek(), Tok::NodeRef(_)) {
            g.outputs = self.list('\0', Parser::port)?;
        }
        self.expect_eof()?;
        Ok(g)
    }

    /// Parses a monoid block, whose id must be `expected`.
    fn monoid(&mut self, expected: usize) -> Result<Monoid, ParseError> {
        self.word("monoid")?;
        match *self.peek() {
            Tok::MonoidRef(n) if n as usize == expected => self.bump(),
            _ => return Err(self.expected(&format!("`@{expected}`"))),
        };
        let Tok::Str(name) = self.peek().clone() else {
            return Err(self.expected("the monoid's name as a string"));
        };
        self.bump();
        self.punct('{')?;
        self.word("state")?;
        self.punct('(')?;
        let fields = self.list(')', |p| {
            let name = match (p.peek().clone(), p.peek_at(1)) {
                (Tok::Ident(s) | Tok::Str(s), Tok::Punct(':')) => {
                    p.bump();
                    p.bump();
                    Some(s)
                }
                _ => None,
            };
            Ok((name, p.dtype()?))
        })?;
        self.punct(')')?;
        self.word("zero")?;
        self.punct('(')?;
        let zero = self.list(')', |p| p.lit(None))?;
        self.punct(')')?;
        let wrap = if self.eat_word("wrap") {
            let params = self.dtypes_paren()?;
            self.punct('=')?;
            Some(Wrap {
                params,
                body: self.expr()?,
            })
        } else {
            None
        };
        self.word("combine")?;
        self.punct('=')?;
        let combine = self.expr()?;
        let unwrap = if self.eat_word("unwrap") {
            let ports = self.dtypes_paren()?;
            self.punct('=')?;
            Some(Unwrap {
                ports,
                body: self.expr()?,
            })
        } else {
            None
        };
        let commutative = self.eat_word("commutative");
        let d_combine = if self.eat_word("d_combine") {
            self.punct('=')?;
            Some(self.expr()?)
        } else {
            None
        };
        self.punct('}')?;
        let (field_names, state) = fields.into_iter().unzip();
        Ok(Monoid {
            name,
            state,
            field_names,
            zero,
            wrap,
            combine,
            unwrap,
            commutative,
            d_combine,
        })
    }

    /// Parses `(dtype, ...)`.
    fn dtypes_paren(&mut self) -> Result<Vec<DType>, ParseError> {
        self.punct('(')?;
        let ds = self.list(')', Parser::dtype)?;
        self.punct(')')?;
        Ok(ds)
    }

    /// Parses a node line after its `%N`.
    fn node(&mut self) -> Result<Node, ParseError> {
        let label = match self.peek() {
            Tok::Str(s) => {
                let s = s.clone();
                self.bump();
                s
            }
            _ => String::new(),
        };
        self.punct('=')?;
        let kind_at = self.pos;
        let Tok::Ident(kind_word) = self.peek().clone() else {
            return Err(self.expected("a node kind"));
        };
        self.bump();
        let mut kind = match kind_word.as_str() {
            "input" => NodeKind::Input {
                index: self.uint("an input index")?,
            },
            "const" => self.const_value()?,
            "random" => {
                let dist = if self.eat_word("uniform") {
                    Dist::Uniform
                } else if self.eat_word("normal") {
                    Dist::Normal
                } else {
                    return Err(self.expected("`uniform` or `normal`"));
                };
                self.word("seed")?;
                NodeKind::Random {
                    dist,
                    seed: self.uint("a seed")?,
                }
            }
            "map" => NodeKind::Map {
                space: self.shape()?,
                reads: self.reads()?,
                body: Vec::new(),
            },
            "reduce" => {
                let space = self.shape()?;
                self.word("over")?;
                let red = self.shape()?;
                let monoid = self.monoid_ref()?;
                NodeKind::Reduce {
                    space,
                    red,
                    monoid,
                    reads: self.reads()?,
                    args: Vec::new(),
                }
            }
            "scan" => {
                let space = self.shape()?;
                let exclusive = self.eat_word("exclusive");
                let monoid = self.monoid_ref()?;
                NodeKind::Scan {
                    space,
                    monoid,
                    exclusive,
                    reads: self.reads()?,
                    args: Vec::new(),
                }
            }
            "histogram" => {
                let space = self.shape()?;
                self.word("bins")?;
                let bins = self.uint("a number of bins")?;
                let monoid = self.monoid_ref()?;
                NodeKind::ReduceByIndex {
                    space,
                    bins,
                    monoid,
                    reads: self.reads()?,
                    index: ScalarExpr::Const(flow_runtime::Scalar::I64(0)),
                    args: Vec::new(),
                }
            }
            "scatter" => {
                let dest = self.port()?;
                let space = self.shape()?;
                NodeKind::Scatter {
                    dest,
                    space,
                    reads: self.reads()?,
                    index: ScalarExpr::Const(flow_runtime::Scalar::I64(0)),
                    value: ScalarExpr::Const(flow_runtime::Scalar::I64(0)),
                }
            }
            "concat" => {
                self.word("axis")?;
                let axis = self.uint("an axis")?;
                self.punct('(')?;
                let parts = self.list(')', Parser::port)?;
                self.punct(')')?;
                NodeKind::Concat { axis, parts }
            }
            "slice" => {
                let src = self.port()?;
                self.word("start")?;
                let start = self.shape()?;
                self.word("shape")?;
                NodeKind::Slice {
                    src,
                    start,
                    shape: self.shape()?,
                }
            }
            _ => {
                let msg = format!("expected a node kind, found `{kind_word}`");
                return Err(self.error_at(kind_at, msg));
            }
        };
        self.punct(':')?;
        let mut outputs = Vec::new();
        if matches!(self.peek(), Tok::Ident(s) if DType::from_name(s).is_some()) {
            outputs = self.list('\0', Parser::tensor_ty)?;
        }
        if kind.reads_and_exprs().is_some() {
            self.punct('{')?;
            let body_at = self.pos;
            let mut exprs = Vec::new();
            if !self.at_punct('}') {
                exprs.push(self.expr()?);
                while self.eat_punct(';') {
                    exprs.push(self.expr()?);
                }
            }
            self.punct('}')?;
            let mut exprs = exprs.into_iter();
            match &mut kind {
                NodeKind::Map { body: xs, .. }
                | NodeKind::Reduce { args: xs, .. }
                | NodeKind::Scan { args: xs, .. } => xs.extend(exprs),
                NodeKind::ReduceByIndex { index, args, .. } => {
                    *index = exprs.next().ok_or_else(|| {
                        self.error_at(body_at, "a histogram needs its bin expression")
                    })?;
                    args.extend(exprs);
                }
                NodeKind::Scatter { index, value, .. } => {
                    match (exprs.next(), exprs.next(), exprs.next()) {
                        (Some(i), Some(v), None) => {
                            *index = i;
                            *value = v;
                        }
                        _ => {
                            return Err(self.error_at(
                                body_at,
                                "a scatter needs exactly a row expression and a value expression",
                            ))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Node {
            kind,
            outputs,
            label,
            span: None,
        })
    }

    /// Parses `dtype[shape] [v, ...]` after `const`.
    fn const_value(&mut self) -> Result<NodeKind, ParseError> {
        let ty = self.tensor_ty()?;
        self.punct('[')?;
        let values = self.list(']', |p| p.lit(Some(ty.dtype)))?;
        let n = num_elements(&ty.shape).ok();
        if n != Some(values.len()) {
            return Err(self.error(format!(
                "a constant of type {ty} needs {} elements, found {}",
                n.map_or("too many".to_string(), |n| n.to_string()),
                values.len()
            )));
        }
        self.punct(']')?;
        let mut data = Data::zeros(ty.dtype, values.len());
        for (k, v) in values.into_iter().enumerate() {
            data.set(k, v);
        }
        let value = Tensor::new(ty.shape, data).map_err(|e| self.error(e.to_string()))?;
        Ok(NodeKind::Const { value })
    }

    /// Parses a monoid reference: a built-in name or `@N`.
    fn monoid_ref(&mut self) -> Result<MonoidRef, ParseError> {
        let r = match self.peek() {
            Tok::MonoidRef(n) => MonoidRef::User(MonoidId(*n)),
            Tok::Ident(s) => match BuiltinMonoid::from_name(s) {
                Some(b) => MonoidRef::Builtin(b),
                None => return Err(self.expected("a monoid")),
            },
            _ => return Err(self.expected("a monoid")),
        };
        self.bump();
        Ok(r)
    }

    /// Parses an optional `reads(...)`.
    fn reads(&mut self) -> Result<Vec<Read>, ParseError> {
        if !self.eat_word("reads") {
            return Ok(Vec::new());
        }
        self.punct('(')?;
        let reads = self.list(')', Parser::read)?;
        self.punct(')')?;
        Ok(reads)
    }

    /// Parses one read, `%N.P[affine, ... | edge]`.
    fn read(&mut self) -> Result<Read, ParseError> {
        let src = self.port()?;
        self.punct('[')?;
        let mut proj = Vec::new();
        if !self.at_punct(']') && !self.at_punct('|') {
            proj = self.list('\0', Parser::affine)?;
        }
        let edge = if self.eat_punct('|') {
            if self.eat_word("clamp") {
                Edge::Clamp
            } else if self.eat_word("pad") {
                Edge::Pad(self.lit(None)?)
            } else {
                return Err(self.expected("`pad` or `clamp`"));
            }
        } else {
            Edge::Strict
        };
        self.punct(']')?;
        Ok(Read {
            node: src.node,
            port: src.port,
            proj,
            edge,
        })
    }

    /// Parses an affine function such as `2*i0 - i1 + 3`.
    fn affine(&mut self) -> Result<Affine, ParseError> {
        let mut a = Affine::default();
        let mut negative = self.eat_punct('-');
        loop {
            let mag = match self.peek() {
                Tok::Num { .. } => Some(self.uint::<u64>("a coefficient")?),
                _ => None,
            };
            let var = if mag.is_none() || self.eat_punct('*') {
                Some(self.index_var()?)
            } else {
                None
            };
            let mag = mag.unwrap_or(1) as i128;
            let value = if negative { -mag } else { mag };
            let value = i64::try_from(value).map_err(|_| self.error("coefficient out of range"))?;
            match var {
                Some(v) => a.coeffs.push((v, value)),
                None => {
                    a.konst = a
                        .konst
                        .checked_add(value)
                        .ok_or_else(|| self.error("constant out of range"))?;
                }
            }
            if self.eat_punct('+') {
                negative = false;
            } else if self.eat_punct('-') {
                negative = true;
            } else {
                return Ok(a);
            }
        }
    }

    /// Parses an index variable `iK` in an affine function.
    fn index_var(&mut self) -> Result<u32, ParseError> {
        match self.peek() {
            Tok::Ident(s) => match numbered(s, 'i') {
                Some(k) => {
                    self.bump();
                    Ok(k)
                }
                None => Err(self.expected("an index variable `iK`")),
            },
            _ => Err(self.expected("an index variable `iK`")),
        }
    }

    /// Parses a scalar expression.
    fn expr(&mut self) -> Result<ScalarExpr, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("expression nests deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let res = self.expr_inner();
        self.depth -= 1;
        let mut e = res?;
        while self.eat_punct('.') {
            e = ScalarExpr::Field(Box::new(e), self.uint("a field number")?);
        }
        Ok(e)
    }

    /// Parses a scalar expression without trailing fields.
    fn expr_inner(&mut self) -> Result<ScalarExpr, ParseError> {
        let name = match self.peek() {
            Tok::Ident(s) => s.clone(),
            Tok::Num { .. } | Tok::Punct('-') => return Ok(ScalarExpr::Const(self.lit(None)?)),
            _ => return Err(self.expected("an expression")),
        };
        for (prefix, make) in [
            ('i', ScalarExpr::Index as fn(u32) -> ScalarExpr),
            ('r', ScalarExpr::Read),
            ('p', ScalarExpr::Param),
        ] {
            if let Some(k) = numbered(&name, prefix) {
                self.bump();
                return Ok(make(k));
            }
        }
        if !self.at_call() {
            return Ok(ScalarExpr::Const(self.lit(None)?));
        }
        let name_at = self.pos;
        self.bump();
        self.punct('(')?;
        let e = if name == "cast" {
            let x = self.expr()?;
            self.punct(',')?;
            ScalarExpr::cast(x, self.dtype()?)
        } else if name == "tuple" {
            ScalarExpr::Tuple(self.list(')', Parser::expr)?)
        } else if name == "gather" {
            let mut args = self.list(')', Parser::expr)?.into_iter();
            let Some(ScalarExpr::Read(k)) = args.next() else {
                return Err(self.error("`gather` takes a read `rK` and then its coordinates"));
            };
            ScalarExpr::Gather(k, args.collect())
        } else {
            let op = if let Some(op) = UnOp::from_name(&name) {
                CallOp::Unary(op)
            } else if let Some(op) = BinOp::from_name(&name) {
                CallOp::Binary(op)
            } else if let Some(f) = MathFn::from_name(&name) {
                CallOp::Math(f)
            } else if name == "select" {
                CallOp::Select
            } else {
                return Err(self.error_at(name_at, format!("unknown operator `{name}`")));
            };
            let args = self.list(')', Parser::expr)?;
            let arity = match op {
                CallOp::Unary(_) | CallOp::Math(_) => 1,
                CallOp::Binary(_) => 2,
                CallOp::Select => 3,
            };
            if args.len() != arity {
                return Err(self.error(format!(
                    "`{name}` takes {arity} operands, found {}",
                    args.len()
                )));
            }
            let mut it = args.into_iter().map(Box::new);
            let mut next = || {
                it.next()
                    .unwrap_or_else(|| Box::new(ScalarExpr::Tuple(Vec::new())))
            };
            match op {
                CallOp::Unary(op) => ScalarExpr::Unary(op, next()),
                CallOp::Binary(op) => ScalarExpr::Binary(op, next(), next()),
                CallOp::Math(f) => ScalarExpr::Call(f, next()),
                CallOp::Select => ScalarExpr::Select(next(), next(), next()),
            }
        };
        self.punct(')')?;
        Ok(e)
    }

    /// Whether the current token is a word followed by `(` that is not a NaN literal.
    fn at_call(&self) -> bool {
        match self.peek() {
            Tok::Ident(s) => {
                self.peek_at(1) == &Tok::Punct('(') && !matches!(s.as_str(), "nanf32" | "nanf64")
            }
            _ => false,
        }
    }
}

/// The `k` of a word `prefix` + decimal `k`, like `i3` or `r0`.
fn numbered(word: &str, prefix: char) -> Option<u32> {
    let digits = word.strip_prefix(prefix)?;
    if !is_digits(digits) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `s` is a non-empty run of ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The operators written as calls with a fixed number of operands.
#[derive(Clone, Copy)]
enum CallOp {
    Unary(UnOp),
    Binary(BinOp),
    Math(MathFn),
    Select,
}
