namespace Shim.VmE2E.Tests;

/// <summary>
/// The runtime under test on a cgroup v2-only guest without systemd (cgroupfs driver, the
/// container in /vm/&lt;id&gt;), containerd 1.6 and 2.1, driven with ctr. One guest boot serves the class.
/// </summary>
public sealed class PlainCgroupV2Tests(PlainGuest guest) : IClassFixture<PlainGuest>
{
    public static TheoryData<string, string> Lines => GuestRun.LinesAndBinaries();

    [Theory, MemberData(nameof(Lines))]
    public void Ctr_run_sees_the_root_of_its_own_cgroup_namespace(string line, string binary) => guest.AssertPassed(line, "run", binary);

    [Theory, MemberData(nameof(Lines))]
    public void The_container_init_is_in_its_own_cgroup(string line, string binary) => guest.AssertPassed(line, "cgroup.placement", binary);

    [Theory, MemberData(nameof(Lines))]
    public void An_oom_kill_shows_in_memory_events(string line, string binary) => guest.AssertPassed(line, "oom.memory-events", binary);

    [Theory, MemberData(nameof(Lines))]
    public void TaskOOM_comes_before_TaskExit(string line, string binary) => guest.AssertPassed(line, "oom.event-before-exit", binary);

    [Theory, MemberData(nameof(Lines))]
    public void An_oom_killed_init_exits_137(string line, string binary) => guest.AssertPassed(line, "oom.exit-status", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Exec_returns_output_and_exit_code(string line, string binary) => guest.AssertPassed(line, "exec", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Exec_reads_stdin_to_its_end(string line, string binary) => guest.AssertPassed(line, "exec.stdin", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Exec_with_a_terminal_gets_a_pty(string line, string binary) => guest.AssertPassed(line, "exec.tty", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Metrics_report_v2_memory_usage(string line, string binary) => guest.AssertPassed(line, "metrics.memory", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Metrics_report_v2_cpu_usage(string line, string binary) => guest.AssertPassed(line, "metrics.cpu", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Metrics_report_v2_pids(string line, string binary) => guest.AssertPassed(line, "metrics.pids", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Metrics_report_v2_block_io(string line, string binary) => guest.AssertPassed(line, "metrics.io", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Pause_freezes_the_cgroup(string line, string binary) => guest.AssertPassed(line, "pause", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Resume_thaws_the_cgroup(string line, string binary) => guest.AssertPassed(line, "resume", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Kill_all_stops_init_and_exec_and_empties_the_cgroup(string line, string binary) => guest.AssertPassed(line, "kill-all", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Delete_leaves_no_cgroup_state_or_mount(string line, string binary) => guest.AssertPassed(line, "delete.nothing-left", binary);

    [Theory, MemberData(nameof(Lines))]
    public void The_shim_moves_itself_into_ShimCgroup_from_a_ctr_options_file(string line, string binary)
    {
        ShimCgroupIsTestable();
        guest.AssertPassed(line, "shim-cgroup", binary);
    }

    [Theory, MemberData(nameof(Lines))]
    public void Cri_runs_a_pod_through_the_handler(string line, string binary) => guest.AssertPassed(line, "cri.pod-up", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_container_is_in_its_cgroup_under_the_pod_parent(string line, string binary) => guest.AssertPassed(line, "cri.cgroup.placement", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_container_stats_report_memory_and_cpu(string line, string binary) => guest.AssertPassed(line, "cri.stats", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_update_sets_memory_max_and_cpu_max(string line, string binary) => guest.AssertPassed(line, "cri.update", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_container_pauses_and_resumes(string line, string binary) => guest.AssertPassed(line, "cri.pause-resume", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_reports_an_oom_killed_container_as_OOMKilled(string line, string binary) => guest.AssertPassed(line, "cri.oom", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_handler_ShimCgroup_holds_the_pods_shim(string line, string binary) => guest.AssertPassed(line, "cri.shim-cgroup", binary);

    [Theory, MemberData(nameof(Lines))]
    public void Cri_pod_removal_leaves_no_cgroup_unit_mount_or_shim(string line, string binary) => guest.AssertPassed(line, "cri.down.nothing-left", binary);

    // ctr hands the runtime options file (runtimeoptions.v1 config_path) only to runtimes other than
    // io.containerd.runc.v2, and containerd's Go shim reads only its own options type
    internal static void ShimCgroupIsTestable()
    {
        if (VmPrereqs.Runtime != VmPrereqs.OurRuntime)
        {
            Assert.Skip($"ctr cannot pass shim_cgroup to {VmPrereqs.Runtime}");
        }
    }
}
