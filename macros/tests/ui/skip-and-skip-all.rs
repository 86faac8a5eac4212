#[flowtrace::traced(skip_all, skip(user))]
async fn task(user: String) {
    let _ = user;
}

fn main() {}
