namespace Shim.VmE2E.Tests;

/// <summary>
/// A guest running guest/rootless.sh (RCS_VM_SUITE=rootless): containerd 1.6 and 2.1 run by an
/// unprivileged user inside rootlesskit, with the runtime under test and runc.
/// </summary>
public abstract class RootlessGuest : GuestRun
{
    protected override string Suite => "rootless";

    protected override string Script => "rootless.sh";

    protected override IReadOnlyList<string> SuiteBinaries => ["runc"];

    // two lines of a handful of containers each under TCG: 2-4 min
    protected override TimeSpan Timeout => TimeSpan.FromMinutes(12);
}

/// <summary>Rootless containerd in the plain guest: no cgroup belongs to the user.</summary>
public sealed class PlainRootlessGuest : RootlessGuest
{
    protected override string Mode => "plain";
}

/// <summary>Rootless containerd in the systemd guest, in a unit whose cgroup systemd delegates to the user.</summary>
public sealed class SystemdRootlessGuest : RootlessGuest
{
    protected override string Mode => "systemd";
}
