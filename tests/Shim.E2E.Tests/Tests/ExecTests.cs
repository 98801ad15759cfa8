using System.Security.Cryptography;
using System.Text;

namespace Shim.E2E.Tests;

/// <summary>`ctr task exec` into a running container.</summary>
public sealed class ExecTests : E2ETest
{
    [Fact]
    public async Task Stdin_piped_into_ctr_task_exec_reaches_the_process()
    {
        (await CtrAsync(RunArgs("ex1", detach: true, "sleep", "300"))).EnsureSuccess();
        var input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 5000).Select(i => $"exec line {i}\n")));

        // the exec reports what it read (see RunTests: echoing it back would test ctr's stdout as well)
        var r = await CtrAsync(["task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "cat1", "ex1", "sha256sum"], input, TimeSpan.FromSeconds(60));

        Assert.True(r.ExitCode == 0, r.Describe());
        Assert.Equal($"{Convert.ToHexStringLower(SHA256.HashData(input))}  -\n", r.Stdout);
    }

    [Fact]
    public async Task The_exit_code_of_an_exec_becomes_the_exit_code_of_ctr_task_exec()
    {
        (await CtrAsync(RunArgs("ex2", detach: true, "sleep", "300"))).EnsureSuccess();

        var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e5", "ex2", "sh", "-c", "echo from-exec; exit 5");

        Assert.True(r.ExitCode == 5, r.Describe());
        Assert.Equal("from-exec\n", r.Stdout);
    }
}
