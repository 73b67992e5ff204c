//! The terminal `shell` attaches to: raw mode for the life of a value, and its size.

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(0) == 1 }
}

/// Raw terminal mode on standard input for the life of the value (when it is a terminal):
/// keys, Ctrl-C included, go to the command in the container.
pub struct RawMode {
    saved: Option<libc::termios>,
}

impl RawMode {
    /// Enters raw mode; does nothing when standard input is not a terminal.
    pub fn enter() -> Self {
        if !stdin_is_terminal() {
            return Self { saved: None };
        }
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a properly sized, zeroed termios struct.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return Self { saved: None };
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return Self { saved: None };
            }
            Self { saved: Some(saved) }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `enter`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}

/// Rows and columns of the terminal on standard output.
pub fn size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal fd.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(1, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_row > 0)
            .then_some((size.ws_row, size.ws_col))
    }
}
