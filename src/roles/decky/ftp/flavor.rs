//! Which FTP server a decky's ftp claims, and that server's reply texts: vsftpd on a Linux
//! persona, Microsoft's IIS FTP service on a Windows one (an IIS 10 site with the
//! default MS-DOS listing style), so that the banner, `SYST`, every reply and the
//! listing agree with the decky's OS profile, its http `Server: Microsoft-IIS/10.0` and
//! its TTL.
use time::OffsetDateTime;

/// The FTP server impersonated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// vsftpd, as every distro packages it.
    Vsftpd,
    /// Microsoft FTP Service (IIS 10).
    Iis,
}

/// The replies whose text depends on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// After USER.
    NeedPassword,
    /// Accepted login.
    LoggedIn,
    /// Refused login.
    LoginIncorrect,
    /// PASS before USER.
    UserFirst,
    /// Any command that needs a login, before one.
    NotLoggedIn,
    /// QUIT.
    Goodbye,
    /// SYST.
    Syst,
    /// NOOP.
    Noop,
    /// FEAT.
    Feat,
    /// A successful CWD or CDUP.
    CwdOk,
    /// A CWD to a directory that does not exist.
    CwdFailed,
    /// TYPE I.
    TypeBinary,
    /// TYPE A.
    TypeAscii,
    /// Any other TYPE.
    TypeBad,
    /// PASV/EPSV could not listen.
    PassiveFailed,
    /// PORT accepted.
    PortOk,
    /// EPRT accepted.
    EprtOk,
    /// PORT refused (another host or a privileged port) or malformed.
    PortIllegal,
    /// EPRT refused.
    EprtIllegal,
    /// A transfer without PASV or PORT before it.
    UsePortOrPasv,
    /// The data connection could not be set up.
    DataFailed,
    /// RETR or SIZE of a file that does not exist.
    NoSuchFile,
    /// SIZE of a file that does not exist.
    SizeFailed,
    /// A listing sent.
    ListDone,
    /// A file sent or received.
    TransferDone,
    /// An unknown command.
    Unknown,
    /// A command line over the cap.
    TooLong,
}

impl Flavor {
    /// The server a persona on `windows` claims.
    pub fn of(windows: bool) -> Self {
        if windows { Flavor::Iis } else { Flavor::Vsftpd }
    }

    /// The text of `reply`, code included.
    pub fn text(self, reply: Reply) -> &'static str {
        use Reply::*;
        match self {
            Flavor::Vsftpd => match reply {
                NeedPassword => "331 Please specify the password.",
                LoggedIn => "230 Login successful.",
                LoginIncorrect => "530 Login incorrect.",
                UserFirst => "503 Login with USER first.",
                NotLoggedIn => "530 Please login with USER and PASS.",
                Goodbye => "221 Goodbye.",
                Syst => "215 UNIX Type: L8",
                Noop => "200 NOOP ok.",
                Feat => {
                    "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End"
                }
                CwdOk => "250 Directory successfully changed.",
                CwdFailed => "550 Failed to change directory.",
                TypeBinary => "200 Switching to Binary mode.",
                TypeAscii => "200 Switching to ASCII mode.",
                TypeBad => "500 Unrecognised TYPE command.",
                PassiveFailed => "425 Could not enter passive mode.",
                PortOk => "200 PORT command successful. Consider using PASV.",
                EprtOk => "200 EPRT command successful. Consider using EPSV.",
                PortIllegal => "500 Illegal PORT command.",
                EprtIllegal => "500 Illegal EPRT command.",
                UsePortOrPasv => "425 Use PORT or PASV first.",
                DataFailed => "425 Failed to establish connection.",
                NoSuchFile => "550 Failed to open file.",
                SizeFailed => "550 Could not get file size.",
                ListDone => "226 Directory send OK.",
                TransferDone => "226 Transfer complete.",
                Unknown => "500 Unknown command.",
                TooLong => "500 Input line too long.",
            },
            Flavor::Iis => match reply {
                NeedPassword => "331 Password required",
                LoggedIn => "230 User logged in.",
                LoginIncorrect => "530 User cannot log in.",
                UserFirst => "503 Login with USER first.",
                NotLoggedIn => "530 Please login with USER and PASS.",
                Goodbye => "221 Goodbye.",
                Syst => "215 Windows_NT",
                Noop => "200 NOOP command successful.",
                Feat => {
                    "211-Extended features supported:\r\n LANG EN*\r\n UTF8\r\n AUTH TLS;TLS-C;SSL;TLS-P;\r\n PBSZ\r\n PROT C;P;\r\n CCC\r\n HOST\r\n SIZE\r\n MDTM\r\n REST STREAM\r\n211 END"
                }
                CwdOk => "250 CWD command successful.",
                CwdFailed | NoSuchFile | SizeFailed => {
                    "550 The system cannot find the file specified. "
                }
                TypeBinary => "200 Type set to I.",
                TypeAscii => "200 Type set to A.",
                TypeBad => "501 Server cannot accept argument.",
                PassiveFailed => "425 Cannot open data connection.",
                PortOk => "200 PORT command successful.",
                EprtOk => "200 EPRT command successful.",
                PortIllegal | EprtIllegal => "501 Server cannot accept argument.",
                UsePortOrPasv | DataFailed => "425 Cannot open data connection.",
                ListDone | TransferDone => "226 Transfer complete.",
                Unknown => "500 Command not understood.",
                TooLong => "500 Command line too long.",
            },
        }
    }

    /// The banner line, when `FTP_BANNER` does not set one.
    pub fn banner(self, distro: &str) -> String {
        match self {
            Flavor::Iis => "220 Microsoft FTP Service".to_owned(),
            Flavor::Vsftpd => {
                let release = match distro {
                    "ubuntu20" | "debian" => "3.0.3",
                    "centos7" => "3.0.2",
                    _ => "3.0.5",
                };
                format!("220 (vsFTPd {release})")
            }
        }
    }

    /// The PWD reply for `cwd`.
    pub fn pwd(self, cwd: &str) -> String {
        match self {
            Flavor::Vsftpd => format!("257 \"{cwd}\" is the current directory"),
            Flavor::Iis => format!("257 \"{cwd}\" is current directory."),
        }
    }

    /// The preliminary reply of a transfer whose data connection is open.
    ///
    /// IIS says `125` when the client opened it (passive) and `150` when the server did;
    /// vsftpd always says `150` and names the file of a RETR.
    pub fn opening(
        self,
        verb: &str,
        file: Option<(&str, usize)>,
        binary: bool,
        passive: bool,
    ) -> String {
        let mode = if binary { "BINARY" } else { "ASCII" };
        match self {
            Flavor::Iis if passive => {
                "125 Data connection already open; Transfer starting.".to_owned()
            }
            Flavor::Iis => format!("150 Opening {mode} mode data connection."),
            Flavor::Vsftpd => match (verb, file) {
                ("LIST" | "NLST", _) => "150 Here comes the directory listing.".to_owned(),
                ("RETR", Some((name, len))) => {
                    format!("150 Opening {mode} mode data connection for {name} ({len} bytes).")
                }
                _ => "150 Ok to send data.".to_owned(),
            },
        }
    }

    /// One `LIST` line of a read-only file of `len` bytes changed at `when`.
    pub fn list_line(self, name: &str, len: usize, when: OffsetDateTime) -> String {
        match self {
            Flavor::Vsftpd => format!(
                "-rw-r--r--    1 1000     1000     {len:>8} {} {:>2} {:04} {name}\r\n",
                MONTHS[usize::from(u8::from(when.month()) - 1)],
                when.day(),
                when.year()
            ),
            Flavor::Iis => {
                let hour = when.hour();
                let (h12, half) = match hour {
                    0 => (12, "AM"),
                    1..=11 => (hour, "AM"),
                    12 => (12, "PM"),
                    _ => (hour - 12, "PM"),
                };
                format!(
                    "{:02}-{:02}-{:02}  {h12:02}:{:02}{half}{len:>21} {name}\r\n",
                    u8::from(when.month()),
                    when.day(),
                    when.year() % 100,
                    when.minute()
                )
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_look_like_each_server() {
        let when = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        assert_eq!(
            Flavor::Vsftpd.list_line("a.txt", 1234, when),
            "-rw-r--r--    1 1000     1000         1234 Nov 14 2023 a.txt\r\n"
        );
        assert_eq!(
            Flavor::Iis.list_line("a.txt", 1234, when),
            "11-14-23  10:13PM                 1234 a.txt\r\n"
        );
        assert_eq!(
            Flavor::of(true).banner("debian"),
            "220 Microsoft FTP Service"
        );
        assert_eq!(Flavor::of(false).banner("centos7"), "220 (vsFTPd 3.0.2)");
    }
}
