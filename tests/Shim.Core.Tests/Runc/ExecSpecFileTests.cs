using System.Text;
using Shim.Runc;

namespace Shim.Core.Tests.Runc;

public sealed class ExecSpecFileTests
{
    /// <summary>Looks at the --process file while "runc exec" runs, as another user on the host could.</summary>
    private sealed class SpecInspector(string flag = "--process") : IRuncRunner
    {
        public string? Path;
        public UnixFileMode Mode;
        public string? Content;
        public RuncIo? Io;

        public async Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
        {
            Io = io;
            int i = args.ToList().IndexOf(flag);
            Path = args[i + 1];
            Mode = File.GetUnixFileMode(Path);
            Content = await File.ReadAllTextAsync(Path, ct);
            return new RuncResult(0, [], "");
        }
    }

    [Fact]
    public async Task The_exec_process_spec_is_readable_by_its_owner_only_while_runc_runs_and_removed_afterwards()
    {
        var inspector = new SpecInspector();
        var runc = new RuncClient(new RuncConfig("/bin/runc", "/run/runc", "/dev/null"), inspector);
        const string Spec = """{"args":["sh"],"env":["PASSWORD=hunter2"]}""";

        await runc.ExecAsync("c1", Encoding.UTF8.GetBytes(Spec), "/b/e1.pid", null, RuncIo.Captured, TestContext.Current.CancellationToken);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, inspector.Mode);
        Assert.Equal(Spec, inspector.Content);
        Assert.StartsWith("runc-process", System.IO.Path.GetFileName(inspector.Path), StringComparison.Ordinal);
        Assert.False(File.Exists(inspector.Path), "the spec file outlived the runc call");
    }

    [Fact]
    public async Task Update_hands_the_resources_over_in_an_owner_only_file_not_on_stdin()
    {
        // crun opens "-" as the path /dev/stdin, which a bare devtmpfs (no udev, no systemd) lacks
        var inspector = new SpecInspector("--resources");
        var runc = new RuncClient(new RuncConfig("/usr/bin/crun", "/run/crun", "/dev/null"), inspector);
        const string Resources = """{"memory":{"limit":67108864},"cpu":{"quota":50000,"period":100000}}""";

        await runc.UpdateAsync("c1", Encoding.UTF8.GetBytes(Resources), TestContext.Current.CancellationToken);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, inspector.Mode);
        Assert.Equal(Resources, inspector.Content);
        Assert.True(inspector.Io!.Input.IsEmpty, "the resources were also written to stdin");
        Assert.StartsWith("runc-resources", System.IO.Path.GetFileName(inspector.Path), StringComparison.Ordinal);
        Assert.False(File.Exists(inspector.Path), "the resources file outlived the call");
    }

    [Fact]
    public async Task The_exec_process_spec_is_removed_when_runc_exec_fails()
    {
        string? seen = null;
        var runc = new RuncClient(new RuncConfig("/bin/runc", "/run/runc", "/dev/null"), new FailingRunner(path => seen = path));

        await Assert.ThrowsAsync<RuncException>(() => runc.ExecAsync("c1", "{}"u8.ToArray(), "/b/e1.pid", null, RuncIo.Captured, TestContext.Current.CancellationToken));

        Assert.NotNull(seen);
        Assert.False(File.Exists(seen));
    }

    private sealed class FailingRunner(Action<string> saw) : IRuncRunner
    {
        public Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
        {
            string path = args[args.ToList().IndexOf("--process") + 1];
            Assert.True(File.Exists(path));
            saw(path);
            return Task.FromResult(new RuncResult(1, [], "exec failed: no such file"));
        }
    }
}
