namespace Shim.E2E.Tests;

/// <summary>
/// The process spec of an exec (<c>runc exec --process &lt;file&gt;</c>) carries the exec's arguments
/// and environment: while runc reads it, no other user may (go-runc creates it with os.CreateTemp,
/// mode 0600), and it is gone once the exec started. A runc wrapper looks at the file when runc
/// is called.
/// </summary>
public sealed class ExecProcessSpecTests : E2ETest, IAsyncLifetime
{
    private RuncWrapper? _runc;

    // the wrapper is made here, after the prerequisites were checked and right before the daemon starts
    private protected override ContainerdOptions DaemonOptions =>
        new(PathFirst: (_runc ??= RuncWrapper.Create(ContainerdLines.Current)).Dir);

    private RuncWrapper Runc => _runc ?? throw new InvalidOperationException("the daemon was not started");

    [Fact]
    public async Task The_spec_of_an_exec_is_mode_0600_while_runc_reads_it_and_removed_afterwards()
    {
        string secret = "RCS_SECRET=s3cr3t-" + Guid.NewGuid().ToString("N")[..8];
        (await CtrAsync("run", "-d", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime,
            "--rootfs", "--env", "PATH=/bin", "--env", secret, RootfsDir, "spec", "sleep", "300")).EnsureSuccess();
        // ctr's exec takes the container's process spec, environment included, with new arguments
        Runc.Before($$"""
            if [ "$verb" = exec ]; then
              {{RuncWrapper.FindProcessSpec}}
              if grep -qF '{{secret}}' "$spec"; then carries=secret; else carries=nothing; fi
              echo "$(stat -c '%a %U' "$spec") $carries $spec" >> "$dir/record"
            fi
            """);

        var exec = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e1", "spec", "sh", "-c", "echo $RCS_SECRET");

        Assert.Equal(secret["RCS_SECRET=".Length..], exec.EnsureSuccess().Stdout.Trim());
        var record = Runc.Record();
        Log("wrapper saw: " + string.Join(" | ", record));
        var seen = Assert.Single(record).Split(' ', 4);
        Assert.Equal(["600", "root", "secret"], seen[..3]);
        Assert.False(File.Exists(seen[3]), $"{seen[3]} is still there after the exec started");
    }

    public new async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _runc?.Dispose();
    }
}
