trait Store {
    #[flowtrace::traced]
    async fn load(&self) -> u8;
}

fn main() {}
