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

#[test]
fn slurm_array_and_stitch_scripts_run_locally_and_chain_with_afterok() {
    let dir = deploy().join("slurm");
    let array = std::fs::read_to_string(dir.join("verify-array.sbatch")).unwrap();
    let spec = array.lines().find_map(|l| l.strip_prefix("#SBATCH --array=")).expect("#SBATCH --array=");
    let (lo, hi) = spec.split_once('-').unwrap();
    let (lo, hi): (u32, u32) = (lo.parse().unwrap(), hi.parse().unwrap());
    let submit = std::fs::read_to_string(dir.join("submit.sh")).unwrap();
    assert!(submit.contains("--parsable") && submit.contains("--dependency=afterok:"), "{submit}");

    let tmp = tempfile::tempdir().unwrap();
    let chain = chain(tmp.path());
    let summaries = tmp.path().join("summaries");
    std::fs::create_dir(&summaries).unwrap();
    for id in lo..=hi {
        let mut cmd = Command::new("bash");
        cmd.arg(dir.join("verify-array.sbatch"));
        for k in SCHEDULER_VARS {
            cmd.env_remove(k);
        }
        let o = cmd
            .env("PATH", path_with_vigil())
            .env("CHAIN", &chain)
            .env("SUMMARIES", &summaries)
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", lo.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", (hi - lo + 1).to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "task {id}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = Command::new("bash")
        .arg(dir.join("stitch.sbatch"))
        .env("PATH", path_with_vigil())
        .env("CHAIN", &chain)
        .env("SUMMARIES", &summaries)
        .output()
        .unwrap();
    let single = single_run(&chain);
    assert_eq!(o.status.code(), single.status.code(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(without_seconds(&o), without_seconds(&single));
    // Without its variables the script says what is missing (exit 2 is
    // the shard's usage error code; bash's :? exits 1).
    let o = Command::new("bash").arg(dir.join("verify-array.sbatch")).env_remove("CHAIN").output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("CHAIN"));
}
