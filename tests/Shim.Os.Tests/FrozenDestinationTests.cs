using System.Text;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Io;
using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

/// <summary>
/// A copy into a regular file whose filesystem stops taking writes (fsfreeze on a loop-mounted
/// ext4) stalls only itself: the loop keeps moving every other stream, and a cancelled copy ends
/// at once, its file closed when the filesystem thaws.
/// </summary>
public sealed class FrozenDestinationTests
{
    private const int Mib = 1024 * 1024;

    [Fact]
    public async Task A_copy_into_a_file_on_a_frozen_filesystem_stalls_only_itself_and_loses_nothing()
    {
        using var loop = new IoLoop("frozen-loop-test");
        await using var fs = await FreezableFilesystem.CreateAsync();
        string log = Path.Combine(fs.MountPoint, "log");
#pragma warning disable CA2000 // the pump owns its destination and closes it at EOF
        var file = Fds.Open(log, Fds.O_WRONLY | Fds.O_CREAT | Fds.O_APPEND, 0x1A4);
#pragma warning restore CA2000
        var (logRead, logWrite) = Pipes.Create();
        using (logRead)
        using (logWrite)
        {
            // the pump's progress callback (loop thread, after each turn that moved bytes) tells when the line landed
            var firstLine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            PumpHandle? logged = null;
            logged = loop.StartPump(logRead, file, closeDestinationAtEof: true, CancellationToken.None, () =>
            {
                if (logged?.BytesCopied == 7)
                {
                    firstLine.TrySetResult();
                }
            });
            Assert.Equal(7, TestIo.Write(logWrite, "before\n"u8));
            await firstLine.Task.WaitAsync(TestIo.Timeout, TestIo.Ct);

            await fs.FreezeAsync();
            byte[] during = Encoding.ASCII.GetBytes(new string('x', 4095) + "\n");
            Assert.Equal(during.Length, TestIo.Write(logWrite, during));
            await TestIo.PollUntilAsync(WriterBlockedInKernel, "the file's writer blocked on the frozen filesystem");

            // another stream of the same loop still flows, end to end
            var (otherRead, otherWrite) = Pipes.Create();
            var (outRead, outWrite) = Pipes.Create();
            using (otherRead)
            using (outRead)
            {
                var other = loop.Pump(otherRead, outWrite, closeDestinationAtEof: true);
                var sent = Task.Run(() => TestIo.WriteRandom(otherWrite, 4 * Mib), TestIo.Ct);
                var received = Task.Run(() => TestIo.HashToEnd(outRead), TestIo.Ct);
                Assert.Equal(await sent.WaitAsync(TestIo.Timeout, TestIo.Ct), await received.WaitAsync(TestIo.Timeout, TestIo.Ct));
                Assert.Equal(4 * Mib, (await other.WaitAsync(TestIo.Timeout, TestIo.Ct)).BytesCopied);
            }
            Assert.False(logged.Completion.IsCompleted);
            Assert.Equal(7, logged.BytesCopied);

            await fs.ThawAsync();
            logWrite.Dispose();
            var result = await logged.Completion.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(new PumpResult(7 + during.Length, 0, 0), result);
            Assert.Equal("before\n" + Encoding.ASCII.GetString(during), await File.ReadAllTextAsync(log, TestIo.Ct));
        }
    }

    [Fact]
    public async Task Cancelling_a_copy_stalled_on_a_frozen_file_ends_it_at_once_and_the_file_is_closed_once_it_thaws()
    {
        using var loop = new IoLoop("frozen-cancel-test");
        await using var fs = await FreezableFilesystem.CreateAsync();
#pragma warning disable CA2000 // the pump owns its destination and closes it at EOF or cancel
        var file = Fds.Open(Path.Combine(fs.MountPoint, "log"), Fds.O_WRONLY | Fds.O_CREAT | Fds.O_APPEND, 0x1A4);
#pragma warning restore CA2000
        var (logRead, logWrite) = Pipes.Create();
        using (logRead)
        using (logWrite)
        using (var cancel = new CancellationTokenSource())
        {
            var logged = loop.StartPump(logRead, file, closeDestinationAtEof: true, cancel.Token);
            await fs.FreezeAsync();
            Assert.Equal(6, TestIo.Write(logWrite, "stuck\n"u8));
            await TestIo.PollUntilAsync(WriterBlockedInKernel, "the file's writer blocked on the frozen filesystem");

            await cancel.CancelAsync();
            var result = await logged.Completion.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal(new PumpResult(0, 6, PumpOperation.ECANCELED), result);
            Assert.False(file.IsClosed);   // the writer is still inside write(2) with it
            await fs.ThawAsync();
            await TestIo.PollUntilAsync(() => file.IsClosed, "the writer closed the file after its write returned");
        }
    }

    /// <summary>A thread of this process sleeps uninterruptibly (state D): a write(2) into the file is held by the freeze.</summary>
    private static bool WriterBlockedInKernel() =>
        Directory.EnumerateDirectories("/proc/self/task").Any(task =>
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                return stat[stat.LastIndexOf(')') + 2] == 'D';
            }
            catch (IOException)
            {
                return false;   // the thread ended meanwhile
            }
        });

}
