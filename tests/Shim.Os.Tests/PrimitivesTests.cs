using System.Runtime.InteropServices;
using Shim.Os.Interop;
using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

public sealed class PrimitivesTests
{
    [Theory]
    [InlineData(0x0000, 0)]      // exit(0)
    [InlineData(0x0700, 7)]      // exit(7)
    [InlineData(0xff00, 255)]    // exit(255)
    [InlineData(0x0009, 137)]    // SIGKILL
    [InlineData(0x000f, 143)]    // SIGTERM
    [InlineData(0x0086, 134)]    // SIGABRT with core dump flag
    public void Wait_status_words_become_shell_style_exit_codes(int status, int expected)
    {
        Assert.Equal(expected, WaitStatus.ToExitCode(status));
    }

    [Fact]
    public void Errno_exceptions_read_operation_strerror_and_the_errnos_name()
    {
        var ex = new ErrnoException(2, "open /x");
        Assert.Equal("open /x: No such file or directory (ENOENT)", ex.Message);
        Assert.Equal("No such file or directory (ENOENT)", ex.Reason);
        Assert.Equal(2, ex.Errno);
        Assert.Equal("open /x", ex.Operation);
    }

    [Theory]
    [InlineData(1, "EPERM")]
    [InlineData(11, "EAGAIN")]
    [InlineData(13, "EACCES")]
    [InlineData(16, "EBUSY")]
    [InlineData(22, "EINVAL")]
    [InlineData(95, "EOPNOTSUPP")]
    [InlineData(110, "ETIMEDOUT")]
    [InlineData(133, "EHWPOISON")]
    [InlineData(41, "errno 41")]      // unused on Linux
    [InlineData(4096, "errno 4096")]
    [InlineData(-1, "errno -1")]
    public void Errno_names_follow_linux_numbering(int errno, string name)
    {
        Assert.Equal(name, Errno.Name(errno));
    }

    [Fact]
    public void Every_errno_constant_has_its_own_name()
    {
        foreach (var field in typeof(Errno).GetFields(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic).Where(f => f.IsLiteral))
        {
            Assert.Equal(field.Name, Errno.Name((int)field.GetRawConstantValue()!));
        }
    }

    [Fact]
    public void Opening_a_missing_file_throws_an_errno_exception_naming_the_path()
    {
        var ex = Assert.Throws<ErrnoException>(() => Fds.Open("/nonexistent/file", Fds.O_RDONLY));
        Assert.Equal("open /nonexistent/file", ex.Operation);
    }

    [Fact]
    public void Struct_layouts_match_this_architecture()
    {
        Assert.Equal(128, Libc.SiginfoSize);
        Assert.Equal(16, Libc.SiginfoPidOffset);
        bool x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;
        Assert.Equal(x64 ? 12 : 16, Libc.EpollEventSize);
        Assert.Equal(x64 ? 4 : 8, Libc.EpollEventDataOffset);
    }

    [Fact]
    public void Pipes_are_close_on_exec_and_can_be_resized()
    {
        var (read, write) = Pipes.Create();
        using (read)
        using (write)
        {
            Pipes.TrySetSize(read, 1024 * 1024);
            Assert.Equal(1024 * 1024, Pipes.GetSize(read));
            Pipes.TrySetSize(read, int.MaxValue);   // refused by the kernel, ignored
            Assert.True(Fds.IsFifo(read));
            Assert.Equal(Libc.FD_CLOEXEC, Libc.fcntl((int)read.DangerousGetHandle(), Libc.F_GETFD, 0) & Libc.FD_CLOEXEC);
        }
    }

    [Fact]
    public void Non_blocking_mode_can_be_switched_on_and_off()
    {
        var (read, write) = Pipes.Create();
        using (read)
        using (write)
        {
            Fds.SetNonBlocking(read, true);
            Assert.Equal(-Errno.EAGAIN, TestIo.Read(read, new byte[1]));
            Fds.SetNonBlocking(read, false);
            Assert.Equal(0, Libc.fcntl((int)read.DangerousGetHandle(), Libc.F_GETFL, 0) & Libc.O_NONBLOCK);
        }
    }

    [Fact]
    public void Dup2_places_a_handle_on_a_chosen_fd_number()
    {
        var (read, write) = Pipes.Create();
        using (read)
        using (write)
        {
            const int target = 900;
            Fds.Dup2(write, target);
            try
            {
                using var alias = new Microsoft.Win32.SafeHandles.SafeFileHandle(target, ownsHandle: true);
                Assert.Equal(2, TestIo.Write(alias, "hi"u8));
                Assert.Equal(2, TestIo.Read(read, new byte[4]));
            }
            finally
            {
                Libc.close(target);
            }
        }
    }

    [Fact]
    public void Fchown_changes_the_owner_of_an_open_file()
    {
        using var dir = TestIo.CreateTempDir();
        string file = dir.Combine("owned");
        using var handle = Fds.Open(file, Fds.O_WRONLY | Fds.O_CREAT, 0x180);
        Fds.Fchown(handle, 1234, 5678);
        Assert.Equal((1234, 5678), Fds.Owner(handle));
    }
}
