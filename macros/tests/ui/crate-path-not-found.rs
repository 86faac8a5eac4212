// The expansion goes through `crate = path` (here a path that does not
// exist) instead of `::flowtrace`.
#[flowtrace::traced(crate = not_flowtrace)]
fn task() {}

fn main() {}
