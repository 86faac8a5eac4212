#[flowtrace::traced]
fn plain() -> u32 {
    1
}

fn main() {}
