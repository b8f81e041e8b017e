//! The deployment files in `deploy/` work: the Kubernetes manifests parse
//! and carry what an Indexed Job of vigil shards needs, and the real entry
//! points (the manifests' container arguments and commands, the Slurm batch
//! scripts) run locally, N processes with the scheduler's environment and
//! then the stitch step, giving exactly one `vigil verify`'s report. No
//! container engine or cluster runs here.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use yaml_rust2::{Yaml, YamlLoader};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml(name: &str) -> Yaml {
    let text = std::fs::read_to_string(deploy().join("k8s").join(name)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec().unwrap_or_else(|| panic!("not a list: {y:?}")).iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// A PATH with the vigil binary first.
fn path_with_vigil() -> String {
    let dir = Path::new(VIGIL).parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

use crate::common;
use common::SCHEDULER_VARS;

fn chain(dir: &Path) -> PathBuf {
    let out = dir.join("chain");
    let o = Command::new(VIGIL)
        .args(["gen", out.to_str().unwrap(), "--seed", "5", "--blocks", "30", "--txs-per-block", "0..8"])
        .args(["--senders", "4", "--payload", "0..48", "--segment-size", "4KiB"])
        .args(["--fault", "nonce@4", "--fault", "prev_hash@11", "--fault", "malformed@15", "--fault", "tx_root@22"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn without_seconds(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            for k in ["seconds", "shards", "longest_shard_seconds"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect()
}

fn single_run(chain: &Path) -> Output {
    let o = Command::new(VIGIL).args(["verify", "--json", chain.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "the chain has faults");
    o
}

#[test]
fn kubernetes_indexed_job_manifests_parse_name_what_they_need_and_run_locally() {
    let job = yaml("verify-job.yaml");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().expect("completions") as u32;
    assert!(n >= 2 && spec["parallelism"].as_i64().is_some());
    assert!(spec["backoffLimitPerIndex"].as_i64().unwrap() >= 1, "crashes are retried per index");
    // Exit code 2 (bad input) fails the index at once.
    let rules = spec["podFailurePolicy"]["rules"].as_vec().expect("podFailurePolicy.rules");
    assert!(
        rules.iter().any(|r| r["action"].as_str() == Some("FailIndex")
            && r["onExitCodes"]["operator"].as_str() == Some("In")
            && r["onExitCodes"]["values"].as_vec().is_some_and(|v| v.contains(&Yaml::Integer(2)))
            && r["onExitCodes"]["containerName"].as_str() == Some("vigil")),
        "{rules:?}"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"), "backoffLimitPerIndex needs restartPolicy Never");
    let container = &pod["containers"][0];
    assert_eq!(container["name"].as_str(), Some("vigil"));
    let env = container["env"].as_vec().unwrap();
    let shards = env.iter().find(|e| e["name"].as_str() == Some("VIGIL_SHARDS")).expect("VIGIL_SHARDS");
    assert_eq!(shards["value"].as_str().unwrap().parse::<u32>().unwrap(), n, "VIGIL_SHARDS = completions");
    let args = strs(&container["args"]);
    assert!(args.windows(2).any(|w| w == ["--shard", "auto"]) && args.contains(&"--summary".to_owned()), "{args:?}");
    let mounts: Vec<&str> =
        container["volumeMounts"].as_vec().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert!(mounts.contains(&"/chain") && mounts.contains(&"/summaries"));
    assert_eq!(pod["volumes"].as_vec().unwrap().len(), 2, "chain and summaries on shared volumes");

    let stitch = yaml("stitch-job.yaml");
    assert_eq!(stitch["kind"].as_str(), Some("Job"));
    let stitch_command = strs(&stitch["spec"]["template"]["spec"]["containers"][0]["command"]);
    assert!(stitch_command.iter().any(|a| a.contains("--chain /chain")), "the stitch re-hashes the chain");

    // The pods, locally: /chain and /summaries are directories here.
    let tmp = tempfile::tempdir().unwrap();
    let chain = chain(tmp.path());
    let summaries = tmp.path().join("summaries");
    std::fs::create_dir(&summaries).unwrap();
    let local =
        |a: &str| a.replace("/chain", chain.to_str().unwrap()).replace("/summaries", summaries.to_str().unwrap());
    for i in 0..n {
        // Kubernetes expands $(VAR) in args from the container's environment.
        let args: Vec<String> =
            args.iter().map(|a| local(a).replace("$(JOB_COMPLETION_INDEX)", &i.to_string())).collect();
        let mut cmd = Command::new(VIGIL);
        cmd.args(&args);
        for k in SCHEDULER_VARS {
            cmd.env_remove(k);
        }
        let o = cmd.env("JOB_COMPLETION_INDEX", i.to_string()).env("VIGIL_SHARDS", n.to_string()).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "pod {i}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read_dir(&summaries).unwrap().count(), n as usize);
    let command: Vec<String> = stitch_command.iter().map(|a| local(a)).collect();
    let o = Command::new(&command[0]).args(&command[1..]).env("PATH", path_with_vigil()).output().unwrap();
    let single = single_run(&chain);
    assert_eq!(o.status.code(), single.status.code(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(without_seconds(&o), without_seconds(&single));

    let dockerfile = std::fs::read_to_string(deploy().join("k8s/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release") && dockerfile.contains("ENTRYPOINT [\"vigil\"]"));
}

/// A stand-in `sbatch` on PATH: records each call's arguments and the
/// variables the jobs get (`--export=ALL`), and answers job ids 100, 101,
/// ... as `--parsable` does (with a cluster name after `;`).
fn fake_sbatch(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("sbatch.log");
    let script = r#"#!/bin/bash
n=$(cat LOG 2>/dev/null | wc -l)
{ printf '%s\t' "$@"; echo "VIGIL_SHARDS=${VIGIL_SHARDS-} CHAIN=${CHAIN-} SUMMARIES=${SUMMARIES-}"; } >> LOG
echo "$((100 + n));cluster"
"#
    .replace("LOG", &format!("'{}'", log.display()));
    let sbatch = bin.join("sbatch");
    std::fs::write(&sbatch, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

/// Runs submit.sh with the fake sbatch: its output and the recorded calls
/// (arguments, then the exported variables).
fn submit(
    tmp: &Path,
    chain: &Path,
    summaries: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (String, Vec<Vec<String>>) {
    let (bin, log) = fake_sbatch(tmp);
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("bash");
    cmd.arg(deploy().join("slurm/submit.sh")).args(args);
    for k in SCHEDULER_VARS.iter().chain(&["VIGIL_CPUS", "VIGIL_MEM"]) {
        cmd.env_remove(k);
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = cmd.env("PATH", path).env("CHAIN", chain).env("SUMMARIES", summaries).envs(env.iter().copied());
    let o = o.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls = calls.lines().map(|l| l.split('\t').map(str::to_owned).collect()).collect();
    (String::from_utf8(o.stdout).unwrap(), calls)
}

#[test]
fn slurm_submit_passes_shards_cpus_and_memory_and_kills_the_stitch_on_a_failed_task() {
    let dir = deploy().join("slurm");
    // The scripts' own defaults fit a small node; submit.sh sets the rest.
    for name in ["verify-array.sbatch", "stitch.sbatch"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(!text.contains("#SBATCH --array"), "{name}: the array's size is VIGIL_SHARDS, set by submit.sh");
        let cpus = text.lines().find_map(|l| l.strip_prefix("#SBATCH --cpus-per-task=")).unwrap_or("1");
        assert!(cpus.parse::<u32>().unwrap() <= 2, "{name}: {cpus} CPUs");
        let mem = text.lines().find_map(|l| l.strip_prefix("#SBATCH --mem=")).unwrap_or("1G");
        assert!(["1G", "512M", "256M"].contains(&mem), "{name}: {mem}");
    }
    // Every script parses (check-local.sh needs root and a Slurm install:
    // it is run by hand).
    for name in ["submit.sh", "verify-array.sbatch", "stitch.sbatch", "check-local.sh"] {
        let o = Command::new("bash").arg("-n").arg(dir.join(name)).output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let tmp = tempfile::tempdir().unwrap();
    let chain = chain(tmp.path());
    let summaries = tmp.path().join("summaries");
    let script = |name: &str| dir.join(name).canonicalize().unwrap().display().to_string();
    let chain_env = format!("CHAIN={}", chain.canonicalize().unwrap().display());

    // Defaults: 4 shards, 2 CPUs and 1G a task.
    let (out, calls) = submit(tmp.path(), &chain, &summaries, &[], &[]);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let (array, stitch) = (&calls[0], &calls[1]);
    for a in ["--parsable", "--array=0-3", "--cpus-per-task=2", "--mem=1G"] {
        assert!(array.contains(&a.to_owned()), "{a}: {array:?}");
    }
    assert_eq!(array[array.len() - 2], script("verify-array.sbatch"));
    let exported = array.last().unwrap();
    assert!(exported.starts_with("VIGIL_SHARDS=4 ") && exported.contains(&chain_env), "{exported}");
    for a in ["--dependency=afterok:100", "--kill-on-invalid-dep=yes"] {
        assert!(stitch.contains(&a.to_owned()), "{a}: {stitch:?}");
    }
    assert_eq!(stitch[stitch.len() - 2], script("stitch.sbatch"));
    assert!(out.contains("array job: 100 ") && out.contains("stitch job: 101 "), "{out}");
    assert!(summaries.is_dir());

    // Options win over the environment; the rest goes to both sbatch calls.
    let env = [("VIGIL_SHARDS", "9"), ("VIGIL_CPUS", "8"), ("VIGIL_MEM", "2G")];
    let (out, calls) =
        submit(tmp.path(), &chain, &summaries, &env, &["--shards", "3", "-c", "1", "--", "--partition=small"]);
    for a in ["--array=0-2", "--cpus-per-task=1", "--mem=2G", "--partition=small"] {
        assert!(calls[0].contains(&a.to_owned()), "{a}: {:?}", calls[0]);
    }
    assert!(calls[1].contains(&"--partition=small".to_owned()), "{:?}", calls[1]);
    assert!(calls[0].last().unwrap().starts_with("VIGIL_SHARDS=3 "), "{:?}", calls[0]);
    // How to re-run one index: the array of one, with N given.
    let rerun = out.lines().find(|l| l.contains("--array=K")).unwrap_or_else(|| panic!("{out}"));
    assert!(rerun.contains("VIGIL_SHARDS=3") && rerun.contains("SUMMARIES="), "{rerun}");
    assert!(out.lines().any(|l| l.contains("--dependency=afterok:$job --kill-on-invalid-dep=yes")), "{out}");

    // Bad parameters are refused before anything is submitted.
    for bad in [["--shards", "0"], ["--cpus", "x"], ["--mem", "lots"]] {
        let mut cmd = Command::new("bash");
        cmd.arg(dir.join("submit.sh")).args(bad).env("CHAIN", &chain).env("SUMMARIES", &summaries);
        let o = cmd.env("PATH", "/nonexistent:/usr/bin:/bin").output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn slurm_array_and_stitch_scripts_run_locally_and_a_rerun_index_stitches() {
    let dir = deploy().join("slurm");
    let tmp = tempfile::tempdir().unwrap();
    let chain = chain(tmp.path());
    let summaries = tmp.path().join("summaries");
    std::fs::create_dir(&summaries).unwrap();
    let n = 4u32;
    // As Slurm runs them: --array=0-3, then index 2 alone (--array=2).
    let task = |id: u32, min: u32, count: u32, shards: Option<u32>| {
        let mut cmd = Command::new("bash");
        cmd.arg(dir.join("verify-array.sbatch"));
        for k in SCHEDULER_VARS {
            cmd.env_remove(k);
        }
        if let Some(n) = shards {
            cmd.env("VIGIL_SHARDS", n.to_string());
        }
        cmd.env("PATH", path_with_vigil())
            .env("CHAIN", &chain)
            .env("SUMMARIES", &summaries)
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", min.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .unwrap()
    };
    for id in 0..n {
        let o = task(id, 0, n, Some(n));
        assert_eq!(o.status.code(), Some(0), "task {id}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let stitch = || {
        Command::new("bash")
            .arg(dir.join("stitch.sbatch"))
            .env("PATH", path_with_vigil())
            .env("CHAIN", &chain)
            .env("SUMMARIES", &summaries)
            .output()
            .unwrap()
    };
    let single = single_run(&chain);
    let o = stitch();
    assert_eq!(o.status.code(), single.status.code(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(without_seconds(&o), without_seconds(&single));
    // A lost summary: the stitch names the shard; re-run as an array of one.
    std::fs::remove_file(summaries.join("shard-2.json")).unwrap();
    let o = stitch();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2/4"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = task(2, 2, 1, None);
    assert_ne!(o.status.code(), Some(0), "without VIGIL_SHARDS a re-run index must not guess N");
    assert!(String::from_utf8_lossy(&o.stderr).contains("VIGIL_SHARDS"));
    assert!(!summaries.join("shard-2.json").exists());
    let o = task(2, 2, 1, Some(n));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard 2/4"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = stitch();
    assert_eq!(o.status.code(), single.status.code(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(without_seconds(&o), without_seconds(&single));
    // An index past VIGIL_SHARDS (an array numbered from 1) is refused.
    let o = task(4, 1, 4, Some(n));
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    // Without its variables the script says what is missing (exit 2 is
    // the shard's usage error code; bash's :? exits 1).
    let o = Command::new("bash").arg(dir.join("verify-array.sbatch")).env_remove("CHAIN").output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("CHAIN"));
}
