namespace Shim.VmE2E.Tests;

/// <summary>
/// Issue 23: the shim installed, upgraded with containers running, and removed as a node operator
/// does it, in the systemd guest with the system's containerd (Debian's 1.6 under systemd) and apt
/// (guest/package.sh). The upgrade starts from <see cref="SystemdPackageGuest.PreviousRelease"/>.
/// One guest boot serves the class.
/// </summary>
public sealed class SystemdPackageTests(SystemdPackageGuest guest) : IClassFixture<SystemdPackageGuest>
{
    private const string Line = "1.6";

    [Fact]
    public void Apt_installs_the_previous_releases_package() => guest.AssertPassed(Line, "upgrade.old-installed");

    [Fact]
    public void Containerd_restarted_with_the_example_drop_in_has_the_runcsharp_and_runc_handlers() => guest.AssertPassed(Line, "package.containerd-restart");

    [Fact]
    public void The_previous_releases_shims_run_two_containers() => guest.AssertPassed(Line, "upgrade.old-running");

    [Fact]
    public void Apt_upgrade_replaces_the_binary_while_the_old_shims_keep_running() => guest.AssertPassed(Line, "upgrade.binary-replaced");

    [Fact]
    public void After_a_containerd_restart_the_daemon_reconnects_to_the_old_shims() => guest.AssertPassed(Line, "upgrade.reconnect");

    [Fact]
    public void Exec_works_on_a_container_of_an_old_shim() => guest.AssertPassed(Line, "upgrade.exec");

    [Fact]
    public void Pause_and_resume_work_on_a_container_of_an_old_shim() => guest.AssertPassed(Line, "upgrade.pause-resume");

    [Fact]
    public void Metrics_work_on_a_container_of_an_old_shim() => guest.AssertPassed(Line, "upgrade.metrics");

    [Fact]
    public void Kill_and_delete_work_on_a_container_of_an_old_shim() => guest.AssertPassed(Line, "upgrade.kill-delete");

    [Fact]
    public void The_new_binarys_delete_cleans_up_after_a_killed_old_shim() => guest.AssertPassed(Line, "upgrade.killed-shim-cleanup");

    [Fact]
    public void A_new_container_runs_the_new_binary() => guest.AssertPassed(Line, "upgrade.new-container-new-binary");

    [Fact]
    public void A_CRI_pod_runs_with_handler_runcsharp_on_the_new_binary() => guest.AssertPassed(Line, "package.cri-pod");

    [Fact]
    public void Apt_remove_leaves_no_file_behind() => guest.AssertPassed(Line, "package.remove-leaves-nothing");
}
