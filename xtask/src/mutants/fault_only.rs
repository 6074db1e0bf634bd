//! Finds the code of the reference server that only a configured fault can run, so that
//! its mutants are left out of the measure instead of counted as survivors.
//!
//! The oracle runs the suite against the server without faults, so `injected!(config, X)`
//! is false throughout. What follows from that alone, by the syntax of the code:
//! - an item, statement, expression or match arm under
//!   `#[cfg(feature = "fault-injection")]` exists for faults only;
//! - in a conjunction `a && injected!(..) && b`, the operands beside the switch cannot
//!   change the result (it is false), so mutants inside `a` and `b` are equivalent (the
//!   operators themselves stay mutated: `injected!(..) || b` is not false);
//! - the `then` block of an `if` whose condition is such a conjunction (or the switch
//!   alone), and the body of a match arm whose guard is, never run;
//! - after `if !injected!(..) { return ..; }`, the rest of the block runs only with the
//!   fault;
//! - a match guard that is such a conjunction is false already, so replacing the whole guard
//!   with `false` changes nothing (replacing it with `true` does, and stays counted).
//!
//! Mutants are tested against the code as built with the `fault-injection` feature, so
//! without this they would be counted as missed although no test could ever see them.

use std::path::Path;

use anyhow::Context;
use proc_macro2::LineColumn;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// A stretch of one source file, by 1-based lines and 1-based character columns (the
/// positions cargo-mutants names mutants by), the end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: (usize, usize),
    pub end: (usize, usize),
    /// When set, the region is fault-only for one mutant alone: the one that replaces the
    /// whole of it with this text.
    pub replaced_with: Option<&'static str>,
}

impl Region {
    fn of(node: &impl Spanned) -> Region {
        let span = node.span();
        let position = |at: LineColumn| (at.line, at.column + 1);
        Region {
            start: position(span.start()),
            end: position(span.end()),
            replaced_with: None,
        }
    }

    /// Whether the mutant named `name` at `[start, end)` changes only what a fault runs.
    pub fn covers(&self, start: (usize, usize), end: (usize, usize), name: &str) -> bool {
        match self.replaced_with {
            None => self.contains(start, end),
            Some(text) => {
                self.contains(start, end)
                    && name.contains("replace match guard ")
                    && name.contains(&format!(" with {text} in "))
            }
        }
    }

    /// Whether `[start, end)` lies wholly inside this region.
    pub fn contains(&self, start: (usize, usize), end: (usize, usize)) -> bool {
        self.start <= start && end <= self.end
    }
}

/// The regions of `source` that only a fault runs or whose value no fault-free run can
/// observe.
pub fn regions(source: &str) -> anyhow::Result<Vec<Region>> {
    let file = syn::parse_file(source).context("cannot parse the file as Rust")?;
    let mut finder = Finder::default();
    finder.visit_file(&file);
    Ok(finder.regions)
}

/// The fault-only regions of every file in `files`, read below `root`.
pub fn regions_by_file(
    root: &Path,
    files: impl IntoIterator<Item = String>,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<Region>>> {
    let mut out = std::collections::BTreeMap::new();
    for file in files {
        let source = std::fs::read_to_string(root.join(&file))
            .with_context(|| format!("cannot read {file}"))?;
        let found = regions(&source).with_context(|| format!("cannot analyse {file}"))?;
        out.insert(file, found);
    }
    Ok(out)
}

#[derive(Default)]
struct Finder {
    regions: Vec<Region>,
}

impl Finder {
    /// Marks everything a fault-only attribute list covers; true when it did.
    fn fault_only_attrs(&mut self, attrs: &[syn::Attribute], node: &impl Spanned) -> bool {
        if attrs.iter().any(is_fault_injection_cfg) {
            self.regions.push(Region::of(node));
            return true;
        }
        false
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Const(item) => &item.attrs,
            syn::Item::Static(item) => &item.attrs,
            syn::Item::Struct(item) => &item.attrs,
            syn::Item::Enum(item) => &item.attrs,
            syn::Item::Trait(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            _ => &[],
        };
        if !self.fault_only_attrs(attrs, item) {
            visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, function: &'ast syn::ImplItemFn) {
        if !self.fault_only_attrs(&function.attrs, function) {
            visit::visit_impl_item_fn(self, function);
        }
    }

    fn visit_stmt(&mut self, statement: &'ast syn::Stmt) {
        let attrs: &[syn::Attribute] = match statement {
            syn::Stmt::Local(local) => &local.attrs,
            syn::Stmt::Macro(mac) => &mac.attrs,
            syn::Stmt::Expr(expr, _) => expr_attrs(expr),
            syn::Stmt::Item(_) => &[],
        };
        if !self.fault_only_attrs(attrs, statement) {
            visit::visit_stmt(self, statement);
        }
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        if let Some(guard) = block.stmts.iter().position(returns_without_fault)
            && let (Some(first), Some(last)) = (block.stmts.get(guard + 1), block.stmts.last())
        {
            let (start, end) = (Region::of(first), Region::of(last));
            self.regions.push(Region {
                start: start.start,
                end: end.end,
                replaced_with: None,
            });
        }
        visit::visit_block(self, block);
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        if self.fault_only_attrs(&arm.attrs, arm) {
            return;
        }
        if let Some((_, guard)) = &arm.guard
            && is_false_without_faults(guard)
        {
            self.regions.push(Region::of(&arm.body));
            self.regions.push(Region {
                replaced_with: Some("false"),
                ..Region::of(&**guard)
            });
        }
        visit::visit_arm(self, arm);
    }

    fn visit_expr(&mut self, expr: &'ast syn::Expr) {
        if self.fault_only_attrs(expr_attrs(expr), expr) {
            return;
        }
        match expr {
            syn::Expr::If(if_expr) if is_false_without_faults(&if_expr.cond) => {
                self.regions.push(Region::of(&if_expr.then_branch));
            }
            syn::Expr::Binary(binary) if matches!(binary.op, syn::BinOp::And(_)) => {
                let operands = conjuncts(expr);
                if operands.iter().any(|operand| is_switch(operand)) {
                    for operand in operands.iter().filter(|operand| !is_switch(operand)) {
                        self.regions.push(Region::of(*operand));
                    }
                }
            }
            _ => {}
        }
        visit::visit_expr(self, expr);
    }
}

fn expr_attrs(expr: &syn::Expr) -> &[syn::Attribute] {
    match expr {
        syn::Expr::Block(block) => &block.attrs,
        syn::Expr::If(if_expr) => &if_expr.attrs,
        syn::Expr::Match(match_expr) => &match_expr.attrs,
        syn::Expr::Call(call) => &call.attrs,
        syn::Expr::MethodCall(call) => &call.attrs,
        syn::Expr::Macro(mac) => &mac.attrs,
        syn::Expr::Return(ret) => &ret.attrs,
        syn::Expr::Assign(assign) => &assign.attrs,
        _ => &[],
    }
}

/// `if !injected!(..) { ..; return ..; }` without an `else`: what follows it in its block
/// runs only with the fault.
fn returns_without_fault(statement: &syn::Stmt) -> bool {
    let syn::Stmt::Expr(syn::Expr::If(if_expr), _) = statement else {
        return false;
    };
    let negated_switch = matches!(&*if_expr.cond,
        syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Not(_), expr, .. }) if is_switch(expr));
    let returns = matches!(
        if_expr.then_branch.stmts.last(),
        Some(syn::Stmt::Expr(syn::Expr::Return(_), _))
    );
    negated_switch && returns && if_expr.else_branch.is_none()
}

/// `#[cfg(feature = "fault-injection")]`, the attribute that compiles code for faults only.
fn is_fault_injection_cfg(attr: &syn::Attribute) -> bool {
    if !attr.path().is_ident("cfg") {
        return false;
    }
    let Ok(syn::Meta::NameValue(meta)) = attr.parse_args::<syn::Meta>() else {
        return false;
    };
    meta.path.is_ident("feature")
        && matches!(&meta.value, syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(name), .. })
            if name.value() == "fault-injection")
}

/// An `injected!(config, Fault)` switch (any path to the macro), in parentheses or not.
fn is_switch(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Macro(mac) => mac
            .mac
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "injected"),
        syn::Expr::Paren(paren) => is_switch(&paren.expr),
        _ => false,
    }
}

/// The operands of a chain of `&&`, flattened (parentheses around a chain included).
fn conjuncts(expr: &syn::Expr) -> Vec<&syn::Expr> {
    match expr {
        syn::Expr::Binary(binary) if matches!(binary.op, syn::BinOp::And(_)) => {
            let mut out = conjuncts(&binary.left);
            out.extend(conjuncts(&binary.right));
            out
        }
        syn::Expr::Paren(paren) if matches!(*paren.expr, syn::Expr::Binary(_)) => {
            conjuncts(&paren.expr)
        }
        _ => vec![expr],
    }
}

/// A condition that is false whenever no fault is configured: a switch, or a conjunction
/// with a switch among its operands.
fn is_false_without_faults(expr: &syn::Expr) -> bool {
    conjuncts(expr).into_iter().any(is_switch)
}

/// The position cargo-mutants gives a mutant, from its `--list --json` entry.
pub fn mutant_span(mutant: &serde_json::Value) -> Option<((usize, usize), (usize, usize))> {
    let at = |which: &str| -> Option<(usize, usize)> {
        let line = mutant.pointer(&format!("/span/{which}/line"))?.as_u64()?;
        let column = mutant.pointer(&format!("/span/{which}/column"))?.as_u64()?;
        Some((usize::try_from(line).ok()?, usize::try_from(column).ok()?))
    };
    Some((at("start")?, at("end")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
fn answer(config: &Config, status: u16, id: Option<u32>) -> u16 {
    if crate::injected!(config, A) && status == 202 {
        return 200;
    }
    let repeats = injected!(config, B) && id == Some(7);
    if !crate::injected!(config, C) && status == 200 {
        return 1;
    }
    #[cfg(feature = "fault-injection")]
    if repeats {
        return 3;
    }
    match id {
        Some(n) if crate::injected!(config, D) => n as u16,
        Some(n) if n > 9 && crate::injected!(config, F) => 9,
        Some(n) if n > 3 => 4,
        _ => 0,
    }
}

#[cfg(feature = "fault-injection")]
fn only_for_faults() -> bool {
    true
}

fn planted(config: &Config, value: &str) -> Option<String> {
    if !crate::injected!(config, E) {
        return None;
    }
    Some(value.trim().to_owned())
}
"#;

    fn position_of(needle: &str, nth: usize) -> (usize, usize) {
        let (line_index, line) = SOURCE
            .lines()
            .enumerate()
            .filter(|(_, line)| line.contains(needle))
            .nth(nth)
            .expect("needle in the source");
        (line_index + 1, line.find(needle).unwrap() + 1)
    }

    fn covered(regions: &[Region], needle: &str, nth: usize) -> bool {
        let start = position_of(needle, nth);
        let end = (start.0, start.1 + needle.chars().count());
        regions.iter().any(|region| region.covers(start, end, ""))
    }

    #[test]
    fn code_only_a_fault_runs_is_found() {
        let found = regions(SOURCE).unwrap();
        // Beside a switch in a conjunction, and in the block it guards.
        assert!(covered(&found, "status == 202", 0));
        assert!(covered(&found, "return 200", 0));
        assert!(covered(&found, "id == Some(7)", 0));
        // Under the fault-injection cfg, a statement and a whole function.
        assert!(covered(&found, "return 3", 0));
        assert!(covered(&found, "true", 0));
        // The body of an arm whose guard is a switch.
        assert!(covered(&found, "n as u16", 0));
        // What follows a return taken without the fault.
        assert!(covered(&found, "Some(value.trim().to_owned())", 0));
    }

    #[test]
    fn only_the_false_replacement_of_a_guard_that_is_false_without_faults_is_fault_only() {
        let found = regions(SOURCE).unwrap();
        let guard = "n > 9 && crate::injected!(config, F)";
        let start = position_of(guard, 0);
        let end = (start.0, start.1 + guard.chars().count());
        let named = |with: &str| format!("replace match guard {guard} with {with} in answer");
        assert!(found.iter().any(|r| r.covers(start, end, &named("false"))));
        assert!(!found.iter().any(|r| r.covers(start, end, &named("true"))));
        // The operand beside the switch is fault-only as any conjunct is.
        assert!(covered(&found, "n > 9", 0));
    }

    #[test]
    fn code_that_runs_without_faults_is_not() {
        let found = regions(SOURCE).unwrap();
        // The switch itself, and the operator that joins it: mutating those turns a fault on.
        assert!(!covered(&found, "crate::injected!(config, A)", 0));
        assert!(!covered(&found, "&&", 0));
        // A negated switch is true without faults: what it guards runs.
        assert!(!covered(&found, "status == 200", 0));
        assert!(!covered(&found, "return 1", 0));
        // Other arms, and the guard of the switch's own arm.
        assert!(!covered(&found, "n > 3", 0));
        assert!(!covered(&found, "=> 4", 0));
        assert!(!covered(&found, "crate::injected!(config, D)", 0));
        // The return itself, taken without the fault.
        assert!(!covered(&found, "return None", 0));
    }
}
