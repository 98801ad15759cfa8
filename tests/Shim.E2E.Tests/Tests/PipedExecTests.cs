using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Shim.E2E.Tests;

/// <summary>
/// <c>echo hello | ctr task exec ... cat</c> as ctr is really used. ctr (cio) opens its end of the
/// stdin FIFO without waiting and copies its stdin as soon as the shim opens the read end; when its
/// stdin ends it closes its writer and sends CloseIO. Our shim opens the FIFO during Start, so with
/// a short input the CloseIO arrives while Start is still in runc exec, and must not be lost: the
/// shim's own writer of the FIFO (kept so the process sees no EOF before the client attached) has to
/// close, or cat never sees EOF. (containerd's shim opens the read end only after runc exec, so
/// ctr's CloseIO cannot come earlier there.) A timing race: many rounds, each bounded.
/// <para>
/// Not here: an input that ends at once (<c>ctr task exec ... wc -c &lt;/dev/null</c>, or
/// <c>echo hi | ctr run --rm ... cat</c>, whose stdin FIFO the shim opens during Create). ctr sets
/// its stdin closer (the CloseIO) only after its Exec / NewTask call returned, and its copy reads
/// stdin from the start: an EOF read before then sends no CloseIO at all, and the process waits for
/// ever with containerd's own shim as well (ExecStartWindowTests sends that CloseIO itself).
/// </para>
/// </summary>
public sealed class PipedExecTests : E2ETest
{
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Rounds of the racing loops: RCS_E2E_LOOPS, else 200 under CI and 20 otherwise.</summary>
    private static int Loops =>
        int.TryParse(Environment.GetEnvironmentVariable("RCS_E2E_LOOPS"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n
            : Prereqs.IsCi ? 200 : 20;

    [Fact]
    public async Task Echo_piped_into_ctr_task_exec_of_cat_prints_hello_and_ends_every_time()
    {
        (await CtrAsync(RunArgs("pipe", detach: true, "sleep", "300"))).EnsureSuccess();
        var hello = Encoding.ASCII.GetBytes("hello\n");

        int lost = 0;
        await LoopAsync(Loops, "ctr task exec cat", async round =>
        {
            var r = await CtrAsync(["task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", $"x{round}", "pipe", "cat"], hello, RoundTimeout);
            Assert.True(r.ExitCode == 0, $"round {round}: {r.Describe()}");
            if (r.Stdout != "hello\n" && Prereqs.IsStockRuntime && "hello\n".StartsWith(r.Stdout, StringComparison.Ordinal))
            {
                // containerd's shim reports the exit without waiting for the client to read the
                // output, and ctr closes its FIFOs at the exit event (seen with 2.1.9: "" in 1 of 10
                // rounds); what this test is about, that cat ends, still holds
                lost++;
                return;
            }
            Assert.True(r.Stdout == "hello\n", $"round {round}: {r.Describe()}");
        });
        if (lost > 0) { Log($"{Runtime}: {lost} of {Loops} rounds lost (part of) cat's output"); }
    }

    // each round bounded by the ctr timeout: a round that hangs is killed and fails naming its number
    private static async Task LoopAsync(int rounds, string what, Func<int, Task> round)
    {
        var total = Stopwatch.StartNew();
        for (int i = 0; i < rounds; i++)
        {
            try { await round(i); }
            catch (TimeoutException e)
            {
                Assert.Fail($"round {i} of {rounds} of {what} did not end within {RoundTimeout.TotalSeconds:0} s (ctr killed): {e.Message}");
            }
        }
        Log($"{rounds} rounds of {what} in {total.Elapsed.TotalSeconds:0.0} s ({total.Elapsed.TotalMilliseconds / rounds:0} ms each)");
    }
}
