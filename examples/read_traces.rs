//! Reads a trace file written by `apical train --record ...` and prints a spike raster
//! summary: per population, spikes, active neurons, mean rate over the recorded time, and
//! a coarse raster of the first recorded example (time bins x neurons, densest first).
//!
//!     cargo run --release --example read_traces -- runs/guerguiev-1h-seed0/traces.h5

use hdf5::types::VarLenUnicode;
use std::error::Error;

fn attr_string(f: &hdf5::File, name: &str) -> Result<String, Box<dyn Error>> {
    Ok(f.attr(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_string())
}

fn main() -> Result<(), Box<dyn Error>> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: read_traces TRACES.h5");
        std::process::exit(2);
    };
    let f = hdf5::File::open(&path)?;
    let complete: bool = f.attr("complete")?.read_scalar()?;
    let last_epoch: u64 = f.attr("last_epoch")?.read_scalar()?;
    let last_example: u64 = f.attr("last_example")?.read_scalar()?;
    println!(
        "{path}: model {}, seed {}, {} (stopped after epoch {last_epoch} example {last_example}: {})",
        attr_string(&f, "model_name")?,
        f.attr("seed")?.read_scalar::<u64>()?,
        if complete { "complete" } else { "incomplete" },
        attr_string(&f, "stop_reason")?,
    );
    let pops: Vec<String> = attr_string(&f, "populations")?
        .split(',')
        .map(String::from)
        .collect();
    let sizes: Vec<u64> = f.attr("population_sizes")?.read_raw()?;
    let Ok(spikes) = f.group("spikes") else {
        println!("no spikes recorded (record them with --record spikes)");
        return Ok(());
    };
    // The first recorded example's time span, from the examples table.
    let span = match f.group("examples") {
        Ok(g) => {
            let start: Vec<f64> = g.dataset("start_time")?.read_raw()?;
            let fwd: Vec<u32> = g.dataset("forward_steps")?.read_raw()?;
            let tgt: Vec<u32> = g.dataset("target_steps")?.read_raw()?;
            let dt: f64 = f.attr("dt")?.read_scalar()?;
            start
                .first()
                .map(|&s| (s, s + (fwd[0] + tgt[0]) as f64 * dt))
        }
        Err(_) => None,
    };
    for (pop, &n) in pops.iter().zip(&sizes) {
        let Ok(g) = spikes.group(pop) else { continue };
        let ts: Vec<f64> = g.dataset("timestamps")?.read_raw()?;
        let ids: Vec<u64> = g.dataset("node_ids")?.read_raw()?;
        let mut per = vec![0u64; n as usize];
        for &i in &ids {
            per[i as usize] += 1;
        }
        let active = per.iter().filter(|&&c| c > 0).count();
        let dur_s = match (ts.first(), ts.last()) {
            (Some(a), Some(b)) if b > a => (b - a) / 1000.0,
            _ => f64::NAN,
        };
        println!(
            "  {pop:<8} {n:>4} neurons: {:>9} spikes, {active:>4} active, {:.1} Hz mean over {:.2} s",
            ts.len(),
            ts.len() as f64 / n as f64 / dur_s,
            dur_s
        );
        let Some((t0, t1)) = span else { continue };
        // Raster of the first example: 10 ms bins x the 8 busiest neurons.
        let mut busiest: Vec<usize> = (0..n as usize).collect();
        busiest.sort_by_key(|&i| std::cmp::Reverse(per[i]));
        busiest.truncate(8);
        let bins = ((t1 - t0) / 10.0).ceil() as usize;
        for &i in &busiest {
            let mut row = vec![' '; bins];
            for (&t, &id) in ts.iter().zip(&ids) {
                if id as usize == i && t >= t0 && t < t1 {
                    row[((t - t0) / 10.0) as usize] = '|';
                }
            }
            println!("    {pop}[{i:>3}] {}", row.into_iter().collect::<String>());
        }
    }
    Ok(())
}
