struct Report;

#[volttron::agent]
impl Report {
    #[schedule(cron = "0 * * *")]
    fn hourly(&mut self) {}
}

fn main() {}
