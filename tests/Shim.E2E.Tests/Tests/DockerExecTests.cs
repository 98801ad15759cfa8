using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Shim.E2E.Tests;

/// <summary>
/// <c>echo hello | docker exec -i c cat</c> and <c>echo hello | docker run --rm -i ... cat</c>
/// through the runtime under test, as Docker really drives a shim: a private dockerd (sid's Docker
/// 28, see <see cref="PrivateDocker"/>) on the test's containerd, the runtime named in daemon.json
/// by its shim v2 name. Docker's order is not ctr's: dockerd (libcontainerd's remote client, Exec
/// and NewTask) opens the FIFOs in its cio creator, copies the client's stdin into them as it
/// arrives, and when that stdin ends closes its FIFO writer but sends CloseIO only once the
/// process's Start (for `run`: the task's Create) has returned ("the stdin of exec process will be
/// created after p.Start in containerd"), so its CloseIO cannot overtake the Start as ctr's can.
/// What must hold either way: cat gets hello and EOF, prints hello and ends. A timing matter: many
/// rounds, each bounded, a failure naming its round. Docker 28 works with every containerd line
/// here (1.6, 1.7 and 2.1), so these run on each.
/// </summary>
public sealed class DockerExecTests : E2ETest
{
    private static readonly TimeSpan ExecRoundTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan RunRoundTimeout = TimeSpan.FromSeconds(40);

    /// <summary>Rounds of each loop: RCS_E2E_LOOPS, else 50 under CI and 10 otherwise.</summary>
    private static int Loops =>
        int.TryParse(Environment.GetEnvironmentVariable("RCS_E2E_LOOPS"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n
            : Prereqs.IsCi ? 50 : 10;

    private static readonly byte[] Hello = Encoding.ASCII.GetBytes("hello\n");

    [Fact]
    public async Task Echo_piped_into_docker_exec_i_of_cat_prints_hello_and_ends_every_time()
    {
        await using var docker = await StartDockerAsync();
        var run = (await docker.DockerAsync(["run", "-d", "--name", "pipe", "--network", "none", "--runtime", PrivateDocker.RuntimeName,
            OciImage.Name, "sleep", "300"], ct: Ct)).EnsureSuccess();
        await AssertRuntimeAsync(run.Stdout.Trim());

        await LoopAsync(docker, "docker exec -i pipe cat", ExecRoundTimeout, async round =>
        {
            var r = await docker.DockerAsync(["exec", "-i", "pipe", "cat"], Hello, ExecRoundTimeout, Ct);
            Assert.True(r.ExitCode == 0 && r.Stdout == "hello\n", $"round {round} of {Loops}: {r.Describe()}\n--- dockerd log tail ---\n{docker.LogTail(30)}");
        });
    }

    [Fact]
    public async Task Echo_piped_into_docker_run_rm_i_of_cat_prints_hello_and_ends_every_time()
    {
        await using var docker = await StartDockerAsync();

        await LoopAsync(docker, "docker run --rm -i cat", RunRoundTimeout, async round =>
        {
            var r = await docker.DockerAsync(["run", "--rm", "-i", "--name", $"r{round}", "--network", "none", "--runtime", PrivateDocker.RuntimeName,
                OciImage.Name, "cat"], Hello, RunRoundTimeout, Ct);
            Assert.True(r.ExitCode == 0 && r.Stdout == "hello\n", $"round {round} of {Loops}: {r.Describe()}\n--- dockerd log tail ---\n{docker.LogTail(30)}");
        });
        // --rm: nothing of the rounds is left, in Docker or in containerd
        Assert.Equal("", (await docker.DockerAsync(["ps", "-aq"], ct: Ct)).EnsureSuccess().Stdout.Trim());
        Assert.Equal("", (await CtrAsync("containers", "ls", "-q")).EnsureSuccess().Stdout.Trim());
    }

    private async Task<PrivateDocker> StartDockerAsync()
    {
        var docker = await PrivateDocker.StartAsync(Ctrd, Ns, Ct);
        try
        {
            await docker.LoadBusyboxAsync(Ct);
            Log($"Docker {ContainerdLines.DockerVersion} pid {docker.Pid} in {docker.Dir} on {Ctrd.Line}, runtime {PrivateDocker.RuntimeName} = {Runtime}");
            return docker;
        }
        catch
        {
            await docker.DisposeAsync();
            throw;
        }
    }

    // the container Docker made is a containerd container of the runtime under test
    private async Task AssertRuntimeAsync(string id)
    {
        var info = JsonNode.Parse((await CtrAsync("containers", "info", id)).EnsureSuccess().Stdout);
        Assert.Equal(Runtime, info?["Runtime"]?["Name"]?.GetValue<string>());
    }

    // each round bounded by the docker client's timeout: a round that hangs is killed and fails naming its number
    private static async Task LoopAsync(PrivateDocker docker, string what, TimeSpan bound, Func<int, Task> round)
    {
        var total = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        for (int i = 0; i < Loops; i++)
        {
            var one = Stopwatch.StartNew();
            try { await round(i); }
            catch (TimeoutException e)
            {
                Assert.Fail($"round {i} of {Loops} of {what} did not end within {bound.TotalSeconds:0} s (docker killed): {e.Message}\n--- dockerd log tail ---\n{docker.LogTail(30)}");
            }
            if (one.Elapsed > slowest) { slowest = one.Elapsed; }
        }
        Log($"{Loops} rounds of {what} in {total.Elapsed.TotalSeconds:0.0} s ({total.Elapsed.TotalMilliseconds / Loops:0} ms each, slowest {slowest.TotalMilliseconds:0} ms)");
    }
}
