using Shim.Runc;

namespace Shim.Core.Tests.Runc;

public class RuncArgsTests
{
    private static readonly RuncConfig Config = new("/usr/sbin/runc", "/run/containerd/runc/ns1", "/b/log.json");

    [Fact]
    public void Every_call_starts_with_root_log_and_json_format()
    {
        Assert.Equal(["/usr/sbin/runc", "--root", "/run/containerd/runc/ns1", "--log", "/b/log.json", "--log-format", "json", "start", "c1"],
            RuncArgs.Start(Config, "c1"));
    }

    [Fact]
    public void Systemd_cgroup_adds_its_global_flag()
    {
        var args = RuncArgs.Start(Config with { SystemdCgroup = true }, "c1");
        Assert.Equal("--systemd-cgroup", args[7]);
    }

    [Fact]
    public void Create_passes_bundle_pid_file_and_optional_flags_before_the_id()
    {
        var args = RuncArgs.Create(Config, "c1", new CreateOptions("/b", "/b/init.pid", "/tmp/pty.sock", NoPivot: true, NoNewKeyring: true));
        Assert.Equal(["create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/pty.sock", "--no-pivot", "--no-new-keyring", "c1"], args.Skip(7));
    }

    [Fact]
    public void Kill_all_puts_the_signal_number_last()
    {
        Assert.Equal(["kill", "--all", "c1", "9"], RuncArgs.Kill(Config, "c1", 9, all: true).Skip(7));
        Assert.Equal(["kill", "c1", "15"], RuncArgs.Kill(Config, "c1", 15, all: false).Skip(7));
    }

    [Fact]
    public void Delete_force_and_ps_json_are_spelled_as_runc_expects()
    {
        Assert.Equal(["delete", "--force", "c1"], RuncArgs.Delete(Config, "c1", force: true).Skip(7));
        Assert.Equal(["ps", "--format", "json", "c1"], RuncArgs.Ps(Config, "c1").Skip(7));
        Assert.Equal(["update", "--resources", "/tmp/r.json", "c1"], RuncArgs.Update(Config, "c1", "/tmp/r.json").Skip(7));
    }

    [Fact]
    public void Exec_is_detached_with_a_pid_file()
    {
        Assert.Equal(["exec", "--process", "/tmp/p.json", "--detach", "--pid-file", "/b/e1.pid", "c1"],
            RuncArgs.Exec(Config, "c1", new ExecOptions("/tmp/p.json", "/b/e1.pid")).Skip(7));
    }

    [Fact]
    public void Ps_output_parses_to_pids_and_null_to_none()
    {
        Assert.Equal([12, 34], RuncClient.ParsePids("[12,34]"u8));
        Assert.Empty(RuncClient.ParsePids("null"u8));
    }
}
