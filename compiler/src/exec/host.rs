//! The coordinator's window on the world: standard output, files and arguments. The driver
//! implements it for real; tests use [`MemoryHost`].

use std::collections::HashMap;

pub trait Host {
    fn stdout(&mut self, text: &str);
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String>;
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String>;
    fn args(&self) -> Vec<String>;
}

/// An in-memory host: captured output and a map of files.
#[derive(Default, Debug)]
pub struct MemoryHost {
    pub out: String,
    pub files: HashMap<String, Vec<u8>>,
    pub argv: Vec<String>,
}

impl Host for MemoryHost {
    fn stdout(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.files.insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    fn args(&self) -> Vec<String> {
        self.argv.clone()
    }
}
