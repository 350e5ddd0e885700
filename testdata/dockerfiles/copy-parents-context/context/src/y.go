package src // y
