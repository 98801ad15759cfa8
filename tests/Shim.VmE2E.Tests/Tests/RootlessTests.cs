namespace Shim.VmE2E.Tests;

/// <summary>
/// Rootless containerd (issue 19) in the plain cgroup v2 guest, where no cgroup is the user's:
/// containerd 1.6 and 2.1 run by user rcsrootless inside rootlesskit (slirp4netns network), driven
/// with ctr entered into rootlesskit's namespaces. A container asking for a cgroup is refused with
/// runc's reason; one whose spec has none runs. One guest boot serves the class.
/// </summary>
public sealed class PlainRootlessTests(PlainRootlessGuest guest) : IClassFixture<PlainRootlessGuest>
{
    public static TheoryData<string> Lines => [.. GuestRun.Lines];

    [Theory, MemberData(nameof(Lines))]
    public void Containerd_runs_as_the_user_inside_rootlesskit(string line) => guest.AssertPassed(line, "setup");

    [Theory, MemberData(nameof(Lines))]
    public void A_container_asking_for_a_cgroup_fails_with_runc_s_reason_and_leaves_nothing(string line) => guest.AssertPassed(line, "no-cgroup.clear-error");

    [Theory, MemberData(nameof(Lines))]
    public void A_container_without_a_cgroup_runs_with_its_output_and_exit_code(string line) => guest.AssertPassed(line, "run");

    [Theory, MemberData(nameof(Lines))]
    public void The_container_s_output_reaches_its_log_file(string line) => guest.AssertPassed(line, "logs");

    [Theory, MemberData(nameof(Lines))]
    public void Exec_reads_stdin_to_its_end(string line) => guest.AssertPassed(line, "exec.stdin");

    // runc 1.1 (containerd 1.6's) lists kill --all's processes from a cgroup the container lacks
    [Theory, MemberData(nameof(Lines))]
    public void Kill_all_with_SIGKILL_ends_init_and_exec(string line) => guest.AssertPassed(line, "kill-all");

    [Theory, MemberData(nameof(Lines))]
    public void Delete_leaves_no_shim_state_or_mount(string line) => guest.AssertPassed(line, "delete.nothing-left");

    [Theory, MemberData(nameof(Lines))]
    public void Stopping_containerd_leaves_no_process_of_the_user(string line) => guest.AssertPassed(line, "teardown.nothing-left");
}

/// <summary>
/// Rootless containerd (issue 19) in the systemd guest: containerd in a unit with Delegate=yes run as
/// user rcsrootless, inside rootlesskit; the containers get cgroups under the unit's (cgroupfs
/// driver, `ctr run --cgroup`), so pause, resume and metrics work as with a rootful containerd.
/// One guest boot serves the class.
/// </summary>
public sealed class SystemdRootlessTests(SystemdRootlessGuest guest) : IClassFixture<SystemdRootlessGuest>
{
    public static TheoryData<string> Lines => [.. GuestRun.Lines];

    [Theory, MemberData(nameof(Lines))]
    public void Containerd_runs_as_the_user_in_its_delegated_cgroup(string line) => guest.AssertPassed(line, "setup");

    [Theory, MemberData(nameof(Lines))]
    public void A_container_asking_for_a_cgroup_outside_the_delegated_one_fails_with_runc_s_reason_and_leaves_nothing(string line) =>
        guest.AssertPassed(line, "no-cgroup.clear-error");

    [Theory, MemberData(nameof(Lines))]
    public void A_container_runs_in_its_cgroup_under_the_unit_with_its_output_and_exit_code(string line) => guest.AssertPassed(line, "run");

    [Theory, MemberData(nameof(Lines))]
    public void The_container_s_output_reaches_its_log_file(string line) => guest.AssertPassed(line, "logs");

    [Theory, MemberData(nameof(Lines))]
    public void Exec_reads_stdin_to_its_end(string line) => guest.AssertPassed(line, "exec.stdin");

    [Theory, MemberData(nameof(Lines))]
    public void Metrics_report_memory_cpu_and_pids(string line) => guest.AssertPassed(line, "metrics");

    [Theory, MemberData(nameof(Lines))]
    public void Pause_freezes_the_cgroup(string line) => guest.AssertPassed(line, "pause");

    [Theory, MemberData(nameof(Lines))]
    public void Resume_thaws_the_cgroup(string line) => guest.AssertPassed(line, "resume");

    [Theory, MemberData(nameof(Lines))]
    public void Kill_all_with_SIGKILL_ends_init_and_exec(string line) => guest.AssertPassed(line, "kill-all");

    [Theory, MemberData(nameof(Lines))]
    public void Delete_leaves_no_shim_state_mount_or_cgroup(string line) => guest.AssertPassed(line, "delete.nothing-left");

    [Theory, MemberData(nameof(Lines))]
    public void Stopping_containerd_leaves_no_process_of_the_user(string line) => guest.AssertPassed(line, "teardown.nothing-left");
}
