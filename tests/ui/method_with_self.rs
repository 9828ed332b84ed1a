struct Server;

impl Server {
    #[runnel::main]
    async fn run(&self) {}
}

fn main() {
    Server.run();
}
